/// Writes a guest's config drive: an ISO 9660 image labelled `config-2` holding the
/// `openstack/…` and `ec2/…` metadata documents of the spec (those the metadata API serves
/// for the server). The QEMU driver calls it when
/// `guest.configDrive` is true and attaches the result as a read-only CD-ROM.
public protocol ConfigDriveWriting: Sendable {
    /// Postcondition: on return a complete image is at `path`; on throw no file is left there.
    func write(_ guest: GuestSpec, to path: String) throws
}
