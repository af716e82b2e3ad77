// nimbus-fuzz: runs the fuzz targets of NimbusFuzzTargets.
//
//   nimbus-fuzz list                        the targets
//   nimbus-fuzz replay TARGET PATH...       runs each file (each file of a directory) through
//                                           TARGET; a crashing input crashes this process
//
// Built by scripts/fuzz with `-sanitize=fuzzer -D NIMBUS_LIBFUZZER`, it is also a libFuzzer
// binary: any other command line is libFuzzer's, plus `--target=NAME` (or the environment
// variable NIMBUS_FUZZ_TARGET) to pick the target:
//
//   nimbus-fuzz --target=json -max_total_time=30 CORPUS_DIR
//
// libFuzzer's own `main` cannot be the entry point: SwiftPM links every executable with
// `--defsym main=<module>_main`, which must resolve to this module's @main. So in that build
// main hands over to libFuzzer through LLVMFuzzerRunDriver, its documented way in for
// programs that keep their own main.

import Foundation
import NimbusFuzzTargets

#if NIMBUS_LIBFUZZER
import CLibFuzzer

/// The target LLVMFuzzerTestOneInput runs. Set once in `main` before libFuzzer starts and only
/// read afterwards; libFuzzer calls the callback from that one thread (its -jobs and -fork
/// modes run separate processes), so nothing races on it.
nonisolated(unsafe) var selectedTarget: FuzzTarget?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget?.run(bytes)
    return 0
}
#endif

@main
struct NimbusFuzz {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "list"?:
            for target in FuzzTargets.all { print("\(target.name)\t\(target.summary)") }
        case "replay"?:
            exit(replay(Array(arguments.dropFirst())))
        case "-h"?, "--help"?, "help"?:
            usage()
        default:
            #if NIMBUS_LIBFUZZER
            exit(runLibFuzzer())
            #else
            usage()
            exit(2)
            #endif
        }
    }

    static func usage() {
        print("""
            usage: nimbus-fuzz list
                   nimbus-fuzz replay TARGET FILE_OR_DIRECTORY...
            """)
        #if NIMBUS_LIBFUZZER
        print("       nimbus-fuzz --target=TARGET [libFuzzer options] [CORPUS_DIR...]   (or NIMBUS_FUZZ_TARGET=TARGET)")
        #else
        print("(this build has no libFuzzer; scripts/fuzz builds one that fuzzes)")
        #endif
    }

    static func target(_ name: String) -> FuzzTarget? {
        if let target = FuzzTargets.named(name) { return target }
        FileHandle.standardError.write(Data("nimbus-fuzz: no target \"\(name)\"; targets: \(FuzzTargets.all.map(\.name).joined(separator: ", "))\n".utf8))
        return nil
    }

    /// Runs every file named (directories: their files, sorted) through the target and
    /// returns the exit status. A crashing input crashes the process; its path was printed
    /// just before, to standard error (unbuffered).
    static func replay(_ arguments: [String]) -> Int32 {
        guard arguments.count >= 2, let target = target(arguments[0]) else {
            usage()
            return 2
        }
        var files: [String] = []
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("nimbus-fuzz: no such file: \(path)\n".utf8))
                return 2
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.filter { !$0.hasPrefix(".") }.sorted().map { path + "/" + $0 }
            } else {
                files.append(path)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                FileHandle.standardError.write(Data("nimbus-fuzz: cannot read \(file)\n".utf8))
                return 2
            }
            FileHandle.standardError.write(Data("replay \(target.name) \(file)\n".utf8))
            target.run([UInt8](data))
        }
        print("nimbus-fuzz: \(target.name): \(files.count) input(s) replayed, no crash")
        return 0
    }

    #if NIMBUS_LIBFUZZER
    static func runLibFuzzer() -> Int32 {
        var name = ProcessInfo.processInfo.environment["NIMBUS_FUZZ_TARGET"]
        var passed: [String] = [CommandLine.arguments[0]]
        for argument in CommandLine.arguments.dropFirst() {
            if argument.hasPrefix("--target=") {
                name = String(argument.dropFirst("--target=".count))
            } else {
                passed.append(argument)
            }
        }
        guard let name, let target = target(name) else {
            FileHandle.standardError.write(Data("nimbus-fuzz: name a target with --target=NAME or NIMBUS_FUZZ_TARGET\n".utf8))
            return 2
        }
        selectedTarget = target
        // libFuzzer re-runs this binary for -fork and -jobs; the environment carries the choice.
        setenv("NIMBUS_FUZZ_TARGET", name, 1)

        // libFuzzer keeps pointers into argv for the whole run, so the strings are not freed.
        var argc = Int32(passed.count)
        let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: passed.count + 1)
        for (i, argument) in passed.enumerated() { argv[i] = strdup(argument) }
        argv[passed.count] = nil
        var argvPointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
        return LLVMFuzzerRunDriver(&argc, &argvPointer) { data, size in
            fuzzOneInput(data, size)
        }
    }
    #endif
}
