import Foundation
import HostAPI
import NimbusCore
import Virt

extension ComputeAgent {
    /// Answers `get_vnc_console`: where the guest's VNC server listens (`console`), or why there
    /// is none — the driver has no graphical consoles (`unsupported`), the guest does not run or
    /// does not exist here (`not_ready`), another failure (`error`). Each is an answer rather
    /// than a failed report, so the API can give Nova's status for it (501, 409, 500), and a
    /// synchronous call leaves no fault behind.
    func vncConsole(_ uuid: String) async -> JSON {
        guard let consoles = driver as? any VNCConsoleDriver else {
            return ["unsupported": .string("The \(driver.name) driver has no graphical consoles.")]
        }
        do {
            return ["console": try await consoles.vncConsole(uuid).json]
        } catch let error as VirtError {
            switch error {
            case .invalidState, .guestNotFound: return ["not_ready": .string(error.description)]
            case .failed(let message): return ["error": .string(message)]
            }
        } catch {
            return ["error": .string("\(error)")]
        }
    }
}
