import Foundation

/// What policy rules are checked against: the caller's effective roles and the flat credential
/// attributes that generic checks such as `project_id:%(project_id)s` or `system_scope:all` read.
public struct PolicyCredentials: Sendable {
    /// Role names, effective (including implied roles).
    public var roles: [String]
    /// e.g. `user_id`, `project_id`, `domain_id`, `system_scope` ("all"), `project_domain_id`.
    public var attributes: [String: String]

    public init(roles: [String], attributes: [String: String]) {
        self.roles = roles
        self.attributes = attributes
    }
}

/// A policy rule or policy file that could not be understood.
public struct PolicyError: Error, CustomStringConvertible, Equatable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Decides whether a caller may perform an action, using oslo.policy's rule language and semantics.
///
/// Services register their default rules; the operator's policy file overrides them by name. All
/// rules are parsed when the engine is built, and the engine is immutable afterwards.
public final class PolicyEngine: Sendable {
    private let rules: [String: PolicyRule]
    private let ruleTexts: [String: String]

    /// - Parameters:
    ///   - defaults: action name -> rule string, as registered by service code
    ///     (e.g. `"identity:create_user": "rule:admin_required"`).
    ///   - overrides: from the operator's policy file; they replace defaults of the same name and
    ///     may add new names (typically shared rules such as `admin_required`).
    /// - Throws: `PolicyError` naming the first rule, in name order, that does not parse.
    public init(defaults: [String: String], overrides: [String: String] = [:]) throws {
        let texts = defaults.merging(overrides) { _, override in override }
        var rules: [String: PolicyRule] = [:]
        // Sorted so that, with several bad rules, the same one is reported on every start.
        for (name, text) in texts.sorted(by: { $0.key < $1.key }) {
            rules[name] = try PolicyRule.parse(text, name: name)
        }
        self.rules = rules
        self.ruleTexts = texts
    }

    /// True when the named action's rule passes. An action with no rule of its own falls back to
    /// the rule named "default", as in oslo.policy, and is denied when there is none.
    public func enforce(_ action: String, credentials: PolicyCredentials, target: [String: String]) -> Bool {
        let name = rules[action] != nil ? action : "default"
        guard let rule = rules[name] else { return false }
        return evaluate(rule, credentials: credentials, target: target, enclosingRules: [name])
    }

    /// The rule string in effect for `action` (the override if there is one, else the default);
    /// nil when the action has no rule of its own, even if "default" would apply to it.
    public func rule(for action: String) -> String? {
        ruleTexts[action]
    }

    /// `enclosingRules` are the named rules being evaluated further up the stack; a `rule:` check
    /// that would re-enter one of them fails instead of recursing forever.
    private func evaluate(_ rule: PolicyRule, credentials: PolicyCredentials, target: [String: String],
                          enclosingRules: [String]) -> Bool {
        switch rule {
        case .allow:
            return true
        case .deny:
            return false
        case .not(let inner):
            return !evaluate(inner, credentials: credentials, target: target, enclosingRules: enclosingRules)
        case .and(let terms):
            return terms.allSatisfy {
                evaluate($0, credentials: credentials, target: target, enclosingRules: enclosingRules)
            }
        case .or(let terms):
            return terms.contains {
                evaluate($0, credentials: credentials, target: target, enclosingRules: enclosingRules)
            }
        case .rule(let name):
            // Unlike oslo.policy, an unknown name does not fall back to "default": a typo in a
            // reference should deny, not silently grant whatever "default" grants.
            guard !enclosingRules.contains(name), let referenced = rules[name] else { return false }
            return evaluate(referenced, credentials: credentials, target: target,
                            enclosingRules: enclosingRules + [name])
        case .role(let value):
            guard let wanted = value.resolved(target: target)?.lowercased() else { return false }
            return credentials.roles.contains { $0.lowercased() == wanted }
        case .generic(let subject, let value):
            guard let actual = subject.resolved(credentials: credentials),
                  let expected = value.resolved(target: target) else { return false }
            if subject.isBoolean || value.isBoolean {
                return actual.lowercased() == expected.lowercased()
            }
            return actual == expected
        }
    }
}

extension PolicyRule.Subject {
    fileprivate func resolved(credentials: PolicyCredentials) -> String? {
        switch self {
        case .credential(let key): return credentials.attributes[key]
        case .literal(let text): return text
        case .boolean(let flag): return flag ? "True" : "False"
        }
    }

    fileprivate var isBoolean: Bool {
        if case .boolean = self { return true }
        return false
    }
}

extension PolicyRule.Value {
    /// The value with target substitutions made; nil when the target lacks a substituted key,
    /// which makes the check fail (as in oslo.policy).
    fileprivate func resolved(target: [String: String]) -> String? {
        switch self {
        case .literal(let text):
            return text
        case .boolean(let flag):
            return flag ? "True" : "False"
        case .template(let parts):
            var result = ""
            for part in parts {
                switch part {
                case .text(let text):
                    result += text
                case .target(let key):
                    guard let value = target[key] else { return nil }
                    result += value
                }
            }
            return result
        }
    }

    fileprivate var isBoolean: Bool {
        if case .boolean = self { return true }
        return false
    }
}

// MARK: - Policy files

extension PolicyEngine {
    /// Reads the operator's policy overrides from a policy.yaml or policy.json file.
    ///
    /// A missing file means no overrides and returns `[:]`. The file may be a JSON object of
    /// strings, or YAML in the flat form oslo.policy's sample generator writes:
    ///
    ///     # comments and blank lines
    ///     "identity:create_user": "role:admin or role:superuser"
    ///     identity:list_users: 'rule:admin_required'
    ///
    /// Only that flat form is understood; anything else (nesting, lists, multi-line values) is a
    /// `PolicyError` naming the file and line, because guessing could silently widen access.
    public static func loadOverrides(path: String) throws -> [String: String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [:] }
        if isDirectory.boolValue { throw PolicyError("policy file \(path): is a directory") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            // An unreadable file must not be mistaken for "no overrides": that could drop restrictions.
            throw PolicyError("policy file \(path): cannot be read: \(error.localizedDescription)")
        }
        guard var text = String(data: data, encoding: .utf8) else {
            throw PolicyError("policy file \(path): not valid UTF-8")
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }

        if text.first(where: { !$0.isWhitespace }) == "{" {
            return try PolicyFileReader(path: path, text: text).readJSON(data)
        }
        return try PolicyFileReader(path: path, text: text).readFlatYAML()
    }
}

/// Parsers for the two policy file forms, reporting errors by file and line.
private struct PolicyFileReader {
    let path: String
    let text: String

    func readJSON(_ data: Data) throws -> [String: String] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            let location = detail.flatMap { lineNumber(inJSONErrorDetail: $0, data: data) }.map { ", line \($0)" } ?? ""
            throw PolicyError("policy file \(path)\(location): invalid JSON: \(detail ?? error.localizedDescription)")
        }
        guard let dictionary = object as? [String: Any] else {
            throw PolicyError("policy file \(path): expected a JSON object mapping rule names to rule strings")
        }
        var rules: [String: String] = [:]
        for (name, value) in dictionary {
            guard let rule = value as? String else {
                let location = lineNumber(ofJSONKey: name).map { ", line \($0)" } ?? ""
                throw PolicyError("policy file \(path)\(location): the rule for \"\(name)\" must be a string")
            }
            rules[name] = rule
        }
        return rules
    }

    /// Foundation on Linux locates JSON syntax errors only as "around character N", a UTF-8 byte
    /// offset; turn that into the line operators look for. Nil when the detail has another shape.
    private func lineNumber(inJSONErrorDetail detail: String, data: Data) -> Int? {
        guard let marker = detail.range(of: "around character "),
              let offset = Int(detail[marker.upperBound...].prefix { $0.isNumber }) else { return nil }
        return data.prefix(offset).reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
    }

    /// JSONSerialization doesn't say where a key is, so find its first occurrence for the message.
    private func lineNumber(ofJSONKey key: String) -> Int? {
        guard let range = text.range(of: "\"\(key)\"") else { return nil }
        return text[..<range.lowerBound].reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
    }

    func readFlatYAML() throws -> [String: String] {
        var rules: [String: String] = [:]
        var lineOfRule: [String: Int] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            var line = rawLine
            if line.last == "\r" { line.removeLast() }
            let content = line.drop { $0 == " " || $0 == "\t" }
            if content.isEmpty || content.first == "#" || (lineNumber == 1 && content == "---") { continue }
            func fail(_ message: String) -> PolicyError {
                PolicyError("policy file \(path), line \(lineNumber): \(message)")
            }
            if content.startIndex != line.startIndex {
                // In YAML an indented line belongs to the line above (a nested mapping, list or
                // continued value); reading it as a top-level rule could grant more than intended.
                throw fail("indented lines are not supported; write one \"name\": \"rule\" per line")
            }
            let (name, rest) = try splitKey(line, fail: fail)
            let rule = try parseValue(rest, fail: fail)
            if let previous = lineOfRule[name] {
                throw fail("\"\(name)\" is already defined on line \(previous)")
            }
            rules[name] = rule
            lineOfRule[name] = lineNumber
        }
        return rules
    }

    /// Splits `name: rest`. An unquoted name ends at the first ": " (or a ':' ending the line), so
    /// names containing colons, like identity:get_user, need no quotes.
    private func splitKey(_ line: Substring, fail: (String) -> PolicyError) throws -> (String, Substring) {
        let name: String
        var rest: Substring
        if let quote = line.first, quote == "\"" || quote == "'" {
            (name, rest) = try readQuoted(line, fail: fail)
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard rest.first == ":" else { throw fail("expected ':' after the quoted name \(line[..<rest.startIndex])") }
            rest = rest.dropFirst()
        } else {
            if let indicator = line.first, "-?[]{}!&*|>%@`,".contains(indicator) {
                throw fail("expected \"name\": \"rule\"; YAML lists, flow mappings and tags are not supported")
            }
            var colon = line.firstIndex(of: ":")
            while let found = colon, line.index(after: found) < line.endIndex,
                  !" \t".contains(line[line.index(after: found)]) {
                colon = line[line.index(after: found)...].firstIndex(of: ":")
            }
            guard let found = colon else { throw fail("expected \"name\": \"rule\"") }
            name = String(line[..<found]).trimmingCharacters(in: .whitespaces)
            rest = line[line.index(after: found)...]
        }
        guard !name.isEmpty else { throw fail("empty rule name") }
        return (name, rest)
    }

    private func parseValue(_ text: Substring, fail: (String) -> PolicyError) throws -> String {
        let value = text.drop { $0 == " " || $0 == "\t" }
        // YAML reads `name:` with no value as null, which oslo.policy treats as the empty rule.
        guard let first = value.first, first != "#" else { return "" }
        if first == "\"" || first == "'" {
            let (rule, rest) = try readQuoted(value, fail: fail)
            let trailing = rest.drop { $0 == " " || $0 == "\t" }
            guard trailing.isEmpty || (trailing.first == "#" && trailing.startIndex != rest.startIndex) else {
                throw fail("unexpected text after the quoted rule: \(trailing)")
            }
            return rule
        }
        if "!&*|>%@`[]{},".contains(first) || value.hasPrefix("- ") {
            // These start YAML tags, anchors, block scalars or collections, not plain text.
            throw fail("a rule starting with '\(first)' must be quoted, e.g. \"\(first)\"")
        }
        // A plain value ends at a " #" comment.
        var end = value.endIndex
        if let comment = value.range(of: " #") ?? value.range(of: "\t#") { end = comment.lowerBound }
        return String(value[..<end]).trimmingCharacters(in: .whitespaces)
    }

    /// Reads a YAML single- or double-quoted scalar at the start of `text`: its value and what follows.
    private func readQuoted(_ text: Substring, fail: (String) -> PolicyError) throws -> (String, Substring) {
        let quote = text[text.startIndex]
        var result = ""
        var i = text.index(after: text.startIndex)
        while i < text.endIndex {
            let c = text[i]
            let next = text.index(after: i)
            if c == quote {
                // In single quotes, '' is an escaped quote.
                if quote == "'", next < text.endIndex, text[next] == "'" {
                    result.append("'")
                    i = text.index(after: next)
                    continue
                }
                return (result, text[next...])
            }
            if c == "\\" && quote == "\"" {
                guard next < text.endIndex else { break }
                switch text[next] {
                case "\"": result.append("\"")
                case "\\": result.append("\\")
                case "/": result.append("/")
                case "t": result.append("\t")
                case "n": result.append("\n")
                default: throw fail("unsupported escape \\\(text[next]) in a double-quoted string")
                }
                i = text.index(after: next)
                continue
            }
            result.append(c)
            i = next
        }
        throw fail("unterminated quoted string (multi-line values are not supported)")
    }
}
