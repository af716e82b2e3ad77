import Foundation
import NimbusCore

/// Glance's filter expressions in `GET /v2/images`: `name=in:a,"b,c"` on the attributes that take
/// a list, and `created_at=gt:2026-11-26T03:00:00Z` on the two timestamps. Parsed with the rest
/// of `ListQuery`, before the store is read, so a bad expression is a 400 whatever the images are.
enum ImageListFilter {
    /// The attributes that take `eq:` (the default) and `in:`; any other operator on them is a 400.
    static let listAttributes = ["name", "id", "status", "container_format", "disk_format"]
    /// The attributes that take comparison operators.
    static let timeAttributes = ["created_at", "updated_at"]

    enum Comparison: String {
        case gt, gte, lt, lte, eq, neq

        func holds(_ value: Double, _ threshold: Double) -> Bool {
            switch self {
            case .gt: return value > threshold
            case .gte: return value >= threshold
            case .lt: return value < threshold
            case .lte: return value <= threshold
            case .eq: return value == threshold
            case .neq: return value != threshold
            }
        }
    }

    /// `op:threshold`. A value with no colon is `eq` of itself, and so is a value that is
    /// whole an ISO 8601 time (its colons are the time's): Glance splits them this way.
    static func splitOperator(_ expression: String) -> (op: String, threshold: String) {
        guard let colon = expression.firstIndex(of: ":") else { return ("eq", expression) }
        if parseTime(expression) != nil { return ("eq", expression) }
        return (String(expression[..<colon]), String(expression[expression.index(after: colon)...]))
    }

    /// The values an `in:` list names, split at commas as Glance splits them (the API working
    /// group's rule): a value in double quotes may hold commas, a quote escaped with a backslash
    /// does not close it (the backslash is kept), an empty item is the empty string. A quote that
    /// opens anywhere but after a comma, closes anywhere but before one, or never closes is a 400.
    static func splitList(_ value: String) throws -> [String] {
        let chars = Array(value)
        var open = false
        for (i, c) in chars.enumerated() where c == "\"" {
            if i > 0 && chars[i - 1] == "\\" { continue }
            if !open && i > 0 && chars[i - 1] != "," {
                throw APIError.badRequest("Invalid filter value \(value). There is no comma before opening quotation mark.")
            }
            if open && i + 1 != chars.count && chars[i + 1] != "," {
                throw APIError.badRequest("Invalid filter value \(value). There is no comma after closing quotation mark.")
            }
            open.toggle()
        }
        if open { throw APIError.badRequest("Invalid filter value \(value). The quote is not closed.") }

        var items: [String] = []
        var i = 0
        func skipComma() { if i < chars.count && chars[i] == "," { i += 1 } }
        while i < chars.count {
            if chars[i] == "\"", let close = closingQuote(chars, after: i) {
                items.append(String(chars[(i + 1)..<close]))
                i = close + 1
                skipComma()
            } else if chars[i] == "," {
                items.append("")
                i += 1
            } else {
                let start = i
                while i < chars.count && chars[i] != "," { i += 1 }
                items.append(String(chars[start..<i]))
                skipComma()
            }
        }
        return items
    }

    /// The index of the quote that closes the one at `open`, stepping over backslash escapes.
    private static func closingQuote(_ chars: [Character], after open: Int) -> Int? {
        var j = open + 1
        while j < chars.count {
            if chars[j] == "\\" {
                guard j + 1 < chars.count, chars[j + 1] != "\n" else { return nil }
                j += 2
            } else if chars[j] == "\"" {
                return j
            } else {
                j += 1
            }
        }
        return nil
    }

    /// The ISO 8601 forms Glance's parser takes for these filters: what `Timestamps.parse`
    /// reads, and a date alone (its midnight, UTC).
    static func parseTime(_ text: String) -> Date? {
        if let date = Timestamps.parse(text) { return date }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, (1...2).contains(parts[1].count), (1...2).contains(parts[2].count) else { return nil }
        return Timestamps.parse(text + "T00:00:00")
    }

    /// `name`, `id`, `status`, `container_format`, `disk_format` → the values each may take.
    static func attributeFilters(_ query: [String: String]) throws -> [(key: String, values: Set<String>)] {
        try listAttributes.compactMap { key in
            guard let raw = query[key] else { return nil }
            let (op, threshold) = splitOperator(raw)
            switch op {
            case "eq": return (key, [threshold])
            case "in": return (key, Set(try splitList(threshold)))
            default: throw APIError.badRequest("Unable to filter by unknown operator '\(op)'.")
            }
        }
    }

    /// `created_at` and `updated_at` → the comparisons each must pass.
    static func timeFilters(_ query: [String: String]) throws -> [(key: String, comparison: Comparison, threshold: Date)] {
        try timeAttributes.compactMap { key in
            guard let raw = query[key] else { return nil }
            let (op, threshold) = splitOperator(raw)
            guard let time = parseTime(threshold) else {
                throw APIError.badRequest("Bad \"\(key)\" query filter format. Use ISO 8601 DateTime notation.")
            }
            guard let comparison = Comparison(rawValue: op) else { throw APIError.badRequest("Unable to filter on a unknown operator.") }
            return (key, comparison, time)
        }
    }

    /// Whether `image` passes every attribute and time filter. Times compare as the API shows
    /// them, in whole seconds, so `eq:` with a shown `created_at` finds its image.
    static func matches(_ image: Image, attributes: [(key: String, values: Set<String>)],
                        times: [(key: String, comparison: Comparison, threshold: Date)]) -> Bool {
        for (key, values) in attributes {
            let value: String?
            switch key {
            case "name": value = image.name
            case "id": value = image.id
            case "status": value = image.status.rawValue
            case "container_format": value = image.containerFormat
            default: value = image.diskFormat
            }
            guard let value, values.contains(value) else { return false }
        }
        for (key, comparison, threshold) in times {
            let time = key == "created_at" ? image.createdAt : image.updatedAt
            guard comparison.holds(time.timeIntervalSince1970.rounded(.down), threshold.timeIntervalSince1970) else { return false }
        }
        return true
    }
}
