import Foundation

/// Kernel modules for the guest: which files, in which order, and the modules.dep busybox
/// modprobe reads. Debian's kernel package ships no modules.dep (depmod makes it on install),
/// so dependencies come from each module's own `.modinfo` section ("depends=a,b").
enum KernelModules {
    /// The `depends=` list recorded in a module file; empty when it has none.
    static func dependencies(ofModule data: Data) -> [String] {
        let key = Array("depends=".utf8)
        let bytes = [UInt8](data)
        var i = 0
        while let found = firstMatch(key, in: bytes, from: i) {
            // .modinfo strings are NUL-separated, so a real field starts after a NUL.
            if found > 0 && bytes[found - 1] == 0 {
                let start = found + key.count
                let end = bytes[start...].firstIndex(of: 0) ?? bytes.count
                return String(decoding: bytes[start..<end], as: UTF8.self)
                    .split(separator: ",").map { String($0) }
            }
            i = found + 1
        }
        return []
    }

    private static func firstMatch(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard needle.count <= haystack.count, from <= haystack.count - needle.count else { return nil }
        var i = from
        while i <= haystack.count - needle.count {
            if haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// Module names are spelt with `_` in depends= and by modprobe; file names may use `-`.
    static func canonical(_ name: String) -> String { name.replacingOccurrences(of: "-", with: "_") }

    /// `wanted` plus everything it depends on, each module after its dependencies and otherwise
    /// in the order asked for. `depends` maps a module to its direct dependencies.
    static func loadOrder(_ wanted: [String], depends: (String) throws -> [String]) throws -> [String] {
        var order: [String] = []
        var placed = Set<String>(), visiting = Set<String>()
        func visit(_ module: String) throws {
            if placed.contains(module) { return }
            guard visiting.insert(module).inserted else {
                throw TestImageError("kernel module dependency cycle through \(module)")
            }
            for dep in try depends(module) { try visit(canonical(dep)) }
            visiting.remove(module)
            placed.insert(module)
            order.append(module)
        }
        for module in wanted { try visit(canonical(module)) }
        return order
    }

    /// modules.dep as modprobe reads it: "kernel/a.ko: kernel/dep1.ko kernel/dep2.ko", every
    /// dependency (transitively), nearest first.
    static func modulesDep(order: [String], paths: [String: String], depends: [String: [String]]) -> String {
        var lines: [String] = []
        for module in order {
            var all: [String] = []
            var queue = depends[module] ?? []
            while !queue.isEmpty {
                let dep = canonical(queue.removeFirst())
                if all.contains(dep) { continue }
                all.append(dep)
                queue += depends[dep] ?? []
            }
            let deps = all.compactMap { paths[$0] }.joined(separator: " ")
            lines.append("\(paths[module]!):" + (deps.isEmpty ? "" : " \(deps)"))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
