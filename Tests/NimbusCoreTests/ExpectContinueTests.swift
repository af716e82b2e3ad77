import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import NimbusCore
import XCTest

final class ExpectContinueTests: XCTestCase {
    private func head(_ version: HTTPVersion = .http1_1, expect: String? = "100-continue") -> HTTPServerRequestPart {
        var headers = HTTPHeaders([("Content-Length", "10")])
        if let expect { headers.add(name: "Expect", value: expect) }
        return .head(HTTPRequestHead(version: version, method: .PUT, uri: "/image/v2/images/x/file", headers: headers))
    }

    private func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ExpectContinueHandler())
        return channel
    }

    func testAnswersContinueAndPassesTheRequestOn() throws {
        let channel = try channel()
        try channel.writeInbound(head(expect: "100-Continue"))
        guard case .head(let response)? = try channel.readOutbound(as: HTTPServerResponsePart.self) else { return XCTFail("no 100") }
        XCTAssertEqual(response.status, .continue)
        guard case .head? = try channel.readInbound(as: HTTPServerRequestPart.self) else { return XCTFail("request not passed on") }
    }

    func testNoAnswerWithoutTheExpectationOrForHTTP10() throws {
        for part in [head(expect: nil), head(.http1_0)] {
            let channel = try channel()
            try channel.writeInbound(part)
            XCTAssertNil(try channel.readOutbound(as: HTTPServerResponsePart.self))
        }
    }

    func testNoAnswerWhileAnEarlierResponseIsPending() throws {
        let channel = try channel()
        try channel.writeInbound(head(expect: nil))
        try channel.writeInbound(head())
        XCTAssertNil(try channel.readOutbound(as: HTTPServerResponsePart.self))
        // Once the first response is written, a later request is answered again.
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .noContent)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .noContent)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        while try channel.readOutbound(as: HTTPServerResponsePart.self) != nil {}
        try channel.writeInbound(head())
        guard case .head(let response)? = try channel.readOutbound(as: HTTPServerResponsePart.self) else { return XCTFail("no 100") }
        XCTAssertEqual(response.status, .continue)
    }
}
