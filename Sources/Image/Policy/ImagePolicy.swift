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
        // `/v2/info/stores/detail` shows where stores keep their data.
        "stores_info_detail": "role:admin",
        // Metadata definitions: anyone may read what they can see (public namespaces and
        // their own project's private ones, decided by the service); only admins write.
        // The target carries the namespace's `owner`, for rules that let owners write too.
        "metadef_default": "",
        "metadef_admin": "role:admin",
    ].merging(metadefActions) { first, _ in first }

    static let metadefActions: [String: String] = Dictionary(uniqueKeysWithValues:
        ["get_metadef_namespace", "get_metadef_namespaces", "get_metadef_object", "get_metadef_objects", "list_metadef_resource_types",
         "get_metadef_resource_type", "get_metadef_property", "get_metadef_properties", "get_metadef_tag", "get_metadef_tags"]
            .map { ($0, "rule:metadef_default") }
        + ["modify_metadef_namespace", "add_metadef_namespace", "delete_metadef_namespace", "modify_metadef_object", "add_metadef_object",
           "delete_metadef_object", "add_metadef_resource_type_association", "remove_metadef_resource_type_association",
           "modify_metadef_property", "add_metadef_property", "remove_metadef_property", "modify_metadef_tag", "add_metadef_tag",
           "add_metadef_tags", "delete_metadef_tag", "delete_metadef_tags"]
            .map { ($0, "rule:metadef_admin") })
}
