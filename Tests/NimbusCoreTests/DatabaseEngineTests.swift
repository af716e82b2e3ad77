import Foundation
import Logging
import NimbusStore
import XCTest

/// The query layer answers the same on SQLite and PostgreSQL.
final class DatabaseEngineTests: XCTestCase {
    func engines() async throws -> [any Database] {
        var urls = ["sqlite://\(NSTemporaryDirectory())nimbus-engine-\(UUID().uuidString).db"]
        if let pg = ProcessInfo.processInfo.environment["NIMBUS_TEST_POSTGRES_URL"], !pg.isEmpty { urls.append(pg) }
        var dbs: [any Database] = []
        for url in urls { dbs.append(try await DatabaseFactory.open(url: url, logger: Logger(label: "test"))) }
        return dbs
    }

    /// PostgreSQL's SUM() is numeric; it must read back as the integer it is.
    func testAggregatesReadBackAsIntegers() async throws {
        for db in try await engines() {
            let table = "engine_test_\(UUID().uuidString.prefix(8).lowercased())"
            try await db.execute("CREATE TABLE \(table) (n BIGINT NOT NULL)")
            for n in [3, 4, 5] { try await db.execute("INSERT INTO \(table) (n) VALUES (?)", [.integer(Int64(n))]) }
            let row = try await db.first("SELECT SUM(n) AS total, COUNT(*) AS rows FROM \(table)")
            XCTAssertEqual(row?.optionalInt("total"), 12, "\(db.dialect)")
            XCTAssertEqual(row?.optionalInt("rows"), 3, "\(db.dialect)")
            try await db.execute("DROP TABLE \(table)")
            await db.close()
        }
    }
}
