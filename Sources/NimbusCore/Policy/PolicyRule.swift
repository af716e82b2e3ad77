import Foundation

/// A parsed rule in the oslo.policy language, e.g. `role:admin or (role:member and project_id:%(project_id)s)`.
///
/// Rules are parsed once, when the policy engine is built, so that a bad policy file is reported at
/// startup and enforcement never re-parses text.
indirect enum PolicyRule: Sendable, Equatable {
    /// `@` or the empty rule.
    case allow
    /// `!`
    case deny
    /// `role:NAME`: the caller holds the role (compared case-insensitively, as Keystone role names are).
    case role(Value)
    /// `rule:NAME`: the outcome of another named rule.
    case rule(String)
    /// `KIND:VALUE` for any other kind: a credential (or a literal) compared with a value.
    case generic(Subject, Value)
    case not(PolicyRule)
    case and([PolicyRule])
    case or([PolicyRule])

    /// The left side of a generic check.
    enum Subject: Sendable, Equatable {
        /// The caller's credential of this name, e.g. `system_scope`.
        case credential(String)
        /// A quoted literal, as in oslo.policy's `'member':%(role.name)s`.
        case literal(String)
        /// `True` / `False`, as in oslo.policy's `True:%(user.enabled)s`.
        case boolean(Bool)
    }

    /// The right side of a check.
    enum Value: Sendable, Equatable {
        case literal(String)
        /// `True` / `False`: matched case-insensitively, because credentials and targets carry
        /// booleans as strings and Swift spells them `true` where Python spells them `True`.
        case boolean(Bool)
        /// Text containing `%(key)s` substitutions from the target.
        case template([TemplatePart])
    }

    enum TemplatePart: Sendable, Equatable {
        case text(String)
        case target(String)
    }

    /// Parses a rule string. `name` is the rule's name, used only to make error messages findable.
    static func parse(_ text: String, name: String) throws -> PolicyRule {
        var parser = Parser(text: text, name: name)
        return try parser.parse()
    }
}

extension PolicyRule {
    /// A recursive-descent parser over oslo.policy's grammar:
    ///
    ///     or   := and ('or' and)*
    ///     and  := not ('and' not)*
    ///     not  := 'not' not | atom
    ///     atom := '(' or ')' | check
    ///
    /// Tokenizing follows oslo.policy: words are split on whitespace, and parentheses are peeled off
    /// the front and back of each word, so `%(project_id)s` inside a check is left alone.
    fileprivate struct Parser {
        enum Token: Equatable {
            case open, close, and, or, not
            case check(String)

            var display: String {
                switch self {
                case .open: return "'('"
                case .close: return "')'"
                case .and: return "'and'"
                case .or: return "'or'"
                case .not: return "'not'"
                case .check(let text): return "'\(text)'"
                }
            }
        }

        let text: String
        let name: String
        var tokens: [Token] = []
        var position = 0

        init(text: String, name: String) {
            self.text = text
            self.name = name
        }

        mutating func parse() throws -> PolicyRule {
            // oslo.policy: an empty rule means "always allow".
            if text.isEmpty { return .allow }
            tokens = try tokenize()
            if tokens.isEmpty {
                // Unlike "", a blank rule is more likely a mistake than a deliberate "allow everyone".
                throw error("the rule is blank; use \"\" or \"@\" to allow everyone, \"!\" to deny")
            }
            let rule = try parseOr()
            if position < tokens.count {
                let token = tokens[position]
                throw error(token == .close ? "unbalanced parentheses: unexpected ')'" : "unexpected \(token.display)")
            }
            return rule
        }

        // MARK: Grammar

        private mutating func parseOr() throws -> PolicyRule {
            var terms = [try parseAnd()]
            while next == .or {
                position += 1
                terms.append(try parseAnd())
            }
            return terms.count == 1 ? terms[0] : .or(terms)
        }

        private mutating func parseAnd() throws -> PolicyRule {
            var terms = [try parseNot()]
            while next == .and {
                position += 1
                terms.append(try parseNot())
            }
            return terms.count == 1 ? terms[0] : .and(terms)
        }

        private mutating func parseNot() throws -> PolicyRule {
            if next == .not {
                position += 1
                return .not(try parseNot())
            }
            return try parseAtom()
        }

        private mutating func parseAtom() throws -> PolicyRule {
            guard let token = next else {
                let after = position > 0 ? " after \(tokens[position - 1].display)" : ""
                throw error("expected a check\(after) but the rule ends")
            }
            position += 1
            switch token {
            case .open:
                let inner = try parseOr()
                guard next == .close else {
                    if let token = next { throw error("expected ')' but found \(token.display)") }
                    throw error("unbalanced parentheses: missing ')'")
                }
                position += 1
                return inner
            case .check(let word):
                return try parseCheck(word)
            case .close, .and, .or, .not:
                let after = position > 1 ? " after \(tokens[position - 2].display)" : ""
                throw error("expected a check\(after) but found \(token.display)")
            }
        }

        private var next: Token? { position < tokens.count ? tokens[position] : nil }

        // MARK: Checks

        private func parseCheck(_ word: String) throws -> PolicyRule {
            if word == "@" { return .allow }
            if word == "!" { return .deny }

            let kind: Substring
            let valueText: Substring
            let subject: Subject
            if let quote = word.first, isQuote(quote) {
                let (literal, rest) = try splitQuoted(word[...])
                guard rest.first == ":" else {
                    throw error("expected ':' after the quoted \(word[..<rest.startIndex]) in '\(word)'")
                }
                kind = ""
                subject = .literal(literal)
                valueText = rest.dropFirst()
            } else {
                guard let colon = word.firstIndex(of: ":") else {
                    throw error("'\(word)' is not a check; expected KIND:VALUE such as role:admin, or @ or !")
                }
                kind = word[..<colon]
                valueText = word[word.index(after: colon)...]
                guard !kind.isEmpty else { throw error("missing the kind before ':' in '\(word)'") }
                switch kind.lowercased() {
                case "true": subject = .boolean(true)
                case "false": subject = .boolean(false)
                default: subject = .credential(String(kind))
                }
            }
            guard !valueText.isEmpty else { throw error("missing the value after ':' in '\(word)'") }

            switch kind {
            case "role":
                return .role(try parseValue(valueText))
            case "rule":
                var ruleName = valueText
                if let quote = ruleName.first, isQuote(quote) {
                    ruleName = try checkedQuoted(ruleName)
                }
                guard !ruleName.isEmpty else { throw error("missing the rule name in '\(word)'") }
                return .rule(String(ruleName))
            case "http", "https":
                // oslo.policy would call out to a URL; silently never matching would hide the problem.
                throw error("'\(word)': http(s) checks are not supported")
            default:
                return .generic(subject, try parseValue(valueText))
            }
        }

        private func parseValue(_ text: Substring) throws -> Value {
            if let quote = text.first, isQuote(quote) {
                return .literal(String(try checkedQuoted(text)))
            }
            switch text.lowercased() {
            case "true": return .boolean(true)
            case "false": return .boolean(false)
            default: break
            }
            guard text.contains("%(") else { return .literal(String(text)) }

            var parts: [TemplatePart] = []
            var literal = ""
            var rest = text
            while let open = rest.range(of: "%(") {
                literal += rest[..<open.lowerBound]
                guard let close = rest[open.upperBound...].range(of: ")s") else {
                    throw error("unterminated substitution in '\(text)'; expected %(key)s")
                }
                let key = rest[open.upperBound..<close.lowerBound]
                guard !key.isEmpty else { throw error("empty substitution %()s in '\(text)'") }
                if !literal.isEmpty {
                    parts.append(.text(literal))
                    literal = ""
                }
                parts.append(.target(String(key)))
                rest = rest[close.upperBound...]
            }
            literal += rest
            if !literal.isEmpty { parts.append(.text(literal)) }
            return .template(parts)
        }

        /// The inside of `text`, which must be exactly one quoted string.
        private func checkedQuoted(_ text: Substring) throws -> Substring {
            let (literal, rest) = try splitQuoted(text)
            guard rest.isEmpty else { throw error("unexpected '\(rest)' after the quoted value in '\(text)'") }
            return literal[...]
        }

        /// Splits a leading quoted string off `text`: its contents, and what follows the closing quote.
        private func splitQuoted(_ text: Substring) throws -> (String, Substring) {
            let quote = text[text.startIndex]
            let contentStart = text.index(after: text.startIndex)
            guard let close = text[contentStart...].firstIndex(of: quote) else {
                throw error("unterminated quote in '\(text)'")
            }
            return (String(text[contentStart..<close]), text[text.index(after: close)...])
        }

        // MARK: Tokens

        private func tokenize() throws -> [Token] {
            var tokens: [Token] = []
            let characters = Array(text)
            var word = ""
            // A quote is only special where a quoted literal can start: at the beginning of a check's
            // kind or value. Elsewhere (e.g. an apostrophe in a name) it is an ordinary character.
            var quoteCanOpen = true
            var sawColon = false

            func endWord() {
                if !word.isEmpty { tokens += Self.tokens(forWord: word) }
                word = ""
                quoteCanOpen = true
                sawColon = false
            }

            var i = 0
            while i < characters.count {
                let c = characters[i]
                if c.isWhitespace {
                    endWord()
                    i += 1
                    continue
                }
                if isQuote(c) && quoteCanOpen {
                    // Consume the whole quoted literal so that whitespace inside it doesn't split it.
                    guard let close = characters[(i + 1)...].firstIndex(of: c) else {
                        throw error("unterminated quote in '\(word)\(String(characters[i...]))'")
                    }
                    word += String(characters[i...close])
                    i = close + 1
                    quoteCanOpen = false
                    continue
                }
                word.append(c)
                switch c {
                case "(":
                    quoteCanOpen = word.allSatisfy { $0 == "(" }
                case ":" where !sawColon:
                    sawColon = true
                    quoteCanOpen = true
                default:
                    quoteCanOpen = false
                }
                i += 1
            }
            endWord()
            return tokens
        }

        private static func tokens(forWord word: String) -> [Token] {
            var tokens: [Token] = []
            var rest = word[...]
            while rest.first == "(" {
                tokens.append(.open)
                rest.removeFirst()
            }
            var closing = 0
            while rest.last == ")" {
                closing += 1
                rest.removeLast()
            }
            if !rest.isEmpty {
                switch rest.lowercased() {
                case "and": tokens.append(.and)
                case "or": tokens.append(.or)
                case "not": tokens.append(.not)
                default: tokens.append(.check(String(rest)))
                }
            }
            tokens += Array(repeating: .close, count: closing)
            return tokens
        }

        private func isQuote(_ c: Character) -> Bool { c == "'" || c == "\"" }

        private func error(_ message: String) -> PolicyError {
            PolicyError("invalid policy rule \"\(name)\": \(message) (rule: \"\(text)\")")
        }
    }
}
