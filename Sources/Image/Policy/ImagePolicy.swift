/// Glance's default policy in the admin/member/reader model: project members manage (and may
/// deactivate) their project's images, readers read, only admins publicize. Which images a caller
/// can see at all (owner, public, community, shared with them) is decided by the service
/// before policy is asked, as in Glance.
public enum ImagePolicy {
    public static let defaults: [String: String] = [
        "image_admin": "role:admin",
        "image_owner_member": "role:member and project_id:%(owner)s",
        "image_manager": "rule:image_admin or rule:image_owner_member",
        "image_reader": "rule:image_admin or role:reader",
        "add_image": "rule:image_manager",
        "get_image": "rule:image_reader",
        "get_images": "rule:image_reader",
        "modify_image": "rule:image_manager",
        "delete_image": "rule:image_manager",
        "upload_image": "rule:image_manager",
        "download_image": "rule:image_reader",
        "publicize_image": "rule:image_admin",
        "communitize_image": "rule:image_manager",
        "set_image_owner": "rule:image_admin",
        "deactivate": "rule:image_manager",
        "reactivate": "rule:image_manager",
        "add_member": "rule:image_manager",
        "delete_member": "rule:image_manager",
        "get_member": "rule:image_reader",
        "get_members": "rule:image_reader",
        "modify_member": "rule:image_admin or (role:member and project_id:%(member_id)s)",
        "copy_image": "rule:image_admin",
        "delete_image_location": "rule:image_admin",
        // The tasks API (`/v2/tasks`), admin-only since Mitaka.
        "tasks_api_access": "role:admin",
    ]
}
