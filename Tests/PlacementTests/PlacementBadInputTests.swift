import Foundation
import HTTPTypes
import NimbusCore
import NimbusTestSupport
import XCTest

/// Request input that once reached a trapping operation in placement (issue #12).
final class PlacementBadInputTests: XCTestCase {
    /// Placement's schema bounds an allocation amount below only. Two consumers of one
    /// `POST /allocations` asking Int64.max each of a provider's class overflowed the sum of
    /// what the request puts on the provider; now the amount is refused as violating the
    /// inventory's constraints (it is above any max_unit), as placement refuses it.
    func testAllocationAmountsPastInt64() async throws {
        try await onEachEngine { cloud, api in
            let admin = try await api.adminToken(cloud)
            let rp = try await api.createProvider("huge", token: admin)
            try await api.setInventory(rp, ["VCPU": ["total": 8]], token: admin)
            let consumer: JSON = ["allocations": .object([rp: ["resources": ["VCPU": .int(Int64.max)]]]), "project_id": "p", "user_id": "u",
                                  "consumer_generation": nil]
            let reply = try await api.placement(.post, "/allocations", token: admin, version: "1.28",
                                                body: .object([newUUID(): consumer, newUUID(): consumer]))
            assertPlacementError(reply, 409, message: "would violate inventory constraints")
            // Below 1.12 the list form may name the provider twice: its amounts were summed unchecked.
            let item: JSON = ["resource_provider": ["uuid": .string(rp)], "resources": ["VCPU": .int(Int64.max)]]
            let listForm = try await api.placement(.put, "/allocations/\(newUUID())", token: admin, version: nil, body: ["allocations": [item, item]])
            assertPlacementError(listForm, 409, message: "would violate inventory constraints")
            let fits = try await api.allocate(newUUID(), [rp: ["VCPU": 8]], token: admin)
            XCTAssertEqual(fits.status, 204, fits.text)
        }
    }
}
