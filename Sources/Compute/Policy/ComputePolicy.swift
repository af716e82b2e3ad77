/// Nova's default policy (nova/policies) in the admin/member/reader model. Rules not listed
/// fall back to `default` (admin).
public enum ComputePolicy {
    static let admin = "role:admin"
    static let member = "role:admin or (role:member and project_id:%(project_id)s)"
    static let reader = "role:admin or (role:reader and project_id:%(project_id)s)"
    static let manager = "role:admin or (role:manager and project_id:%(project_id)s)"
    static let anyone = "@"
    static let ownKeypairs = "role:admin or user_id:%(user_id)s"

    public static let defaults: [String: String] = {
        var rules: [String: String] = [:]
        for rule in ["servers:index", "servers:detail", "servers:show", "server-metadata:index", "server-metadata:show", "os-server-tags:index",
                     "os-server-tags:show", "os-instance-actions:list", "os-instance-actions:show", "os-server-groups:index",
                     "os-server-groups:show", "os-security-groups:list", "os-simple-tenant-usage:show", "os-quota-sets:show", "os-quota-sets:detail", "os-flavor-extra-specs:index",
                     "os-flavor-extra-specs:show"] {
            rules["os_compute_api:\(rule)"] = reader
        }
        for rule in ["servers:create", "servers:update", "servers:delete", "servers:reboot", "servers:resize", "servers:confirm_resize",
                     "servers:revert_resize", "servers:rebuild", "servers:create_image", "servers:start", "servers:stop",
                     "os-lock-server:lock", "os-lock-server:unlock", "os-pause-server:pause", "os-pause-server:unpause",
                     "os-suspend-server:suspend", "os-suspend-server:resume", "os-shelve:shelve", "os-shelve:unshelve", "os-rescue",
                     "os-rescue:unrescue", "os-console-output", "server-metadata:create", "server-metadata:update",
                     "server-metadata:update_all", "server-metadata:delete", "os-server-tags:update", "os-server-tags:update_all",
                     "os-server-tags:delete", "os-server-tags:delete_all", "os-server-groups:create", "os-server-groups:delete",
                     "os-security-groups:add", "os-security-groups:remove", "os-deferred-delete:restore", "os-create-backup",
                     "os-deferred-delete:force", "os-remote-consoles"] {
            rules["os_compute_api:\(rule)"] = member
        }
        for rule in ["os-migrate-server:migrate", "os-migrate-server:migrate_live"] { rules["os_compute_api:\(rule)"] = manager }
        for rule in ["os-attach-interfaces:list", "os-attach-interfaces:show", "os-server-password:show"] { rules["os_compute_api:\(rule)"] = reader }
        rules["os_compute_api:os-server-password:clear"] = member
        for rule in ["os-attach-interfaces:create", "os-attach-interfaces:delete", "os-admin-password"] { rules["os_compute_api:\(rule)"] = member }
        for rule in ["servers:index:get_all_tenants", "servers:detail:get_all_tenants", "servers:create:forced_host", "os-evacuate",
                     "os-shelve:shelve_offload", "os-shelve:unshelve_to_host", "os-admin-actions:reset_state", "os-lock-server:unlock:unlock_override",
                     "os-migrate-server:migrate:host", "os-migrate-server:migrate_live:host", "os-flavor-manage:create", "os-flavor-manage:update",
                     "os-flavor-manage:delete", "os-flavor-extra-specs:create", "os-flavor-extra-specs:update", "os-flavor-extra-specs:delete",
                     "os-flavor-access", "os-flavor-access:add_tenant_access", "os-flavor-access:remove_tenant_access", "os-services:list",
                     "os-services:update", "os-services:delete", "os-hypervisors:list", "os-hypervisors:detail", "os-hypervisors:show",
                     "os-simple-tenant-usage:list", "os-hypervisors:statistics", "os-hypervisors:uptime", "os-hypervisors:search", "os-hypervisors:servers",
                     "os-aggregates:index", "os-aggregates:show", "os-aggregates:create", "os-aggregates:update", "os-aggregates:delete",
                     "os-aggregates:add_host", "os-aggregates:remove_host", "os-aggregates:set_metadata", "os-hosts:list", "os-hosts:show",
                     "os-hosts:update", "os-hosts:reboot", "os-hosts:shutdown", "os-hosts:start", "os-migrations:index",
                     "servers:migrations:index", "servers:migrations:show", "os-server-diagnostics", "os-instance-usage-audit-log:list",
                     "os-availability-zone:detail", "os-quota-sets:update", "os-quota-sets:delete", "os-quota-class-sets:show",
                     "os-quota-class-sets:update", "limits:other_project", "servers:allow_all_filters", "os-server-groups:index:all_projects", "os-console-auth-tokens"] {
            rules["os_compute_api:\(rule)"] = admin
        }
        rules["compute:servers:create:requested_destination"] = admin
        // Crash dumps, steering live migrations, topology, addresses, precache, and the proxies to Neutron.
        for rule in ["servers:trigger_crash_dump", "os-security-groups:create", "os-security-groups:update", "os-security-groups:delete",
                     "os-security-groups:rule:create", "os-security-groups:rule:delete"] { rules["os_compute_api:\(rule)"] = member }
        for rule in ["ips:index", "ips:show", "os-networks:list", "os-networks:show", "os-tenant-networks:list", "os-tenant-networks:show",
                     "os-security-groups:get", "os-security-groups:show"] { rules["os_compute_api:\(rule)"] = reader }
        for rule in ["servers:migrations:force_complete", "servers:migrations:delete"] { rules["os_compute_api:\(rule)"] = manager }
        rules["os_compute_api:os-floating-ip-pools"] = anyone
        for rule in ["create", "delete", "add", "remove"] { rules["os_compute_api:os-floating-ips:\(rule)"] = member }
        for rule in ["list", "show"] { rules["os_compute_api:os-floating-ips:\(rule)"] = reader }
        rules["os_compute_api:os-admin-actions:inject_network_info"] = admin
        rules["compute:server:topology:index"] = reader
        rules["compute:server:topology:host:index"] = admin
        rules["compute:aggregates:images"] = admin
        // Host agents (nimbus agent) reach the control plane with a service user's token.
        rules["compute_agent"] = "role:service or role:admin"
        // Neutron (and Cinder) tell Nova about ports and volumes with a service user's token.
        rules["os_compute_api:os-server-external-events:create"] = "role:service or role:admin"
        for rule in ["flavors:index", "flavors:show", "os-quota-sets:defaults", "limits", "os-availability-zone:list"] {
            rules["os_compute_api:\(rule)"] = anyone
        }
        for rule in ["os-keypairs:index", "os-keypairs:create", "os-keypairs:show", "os-keypairs:delete"] { rules["os_compute_api:\(rule)"] = ownKeypairs }
        return rules
    }()
}
