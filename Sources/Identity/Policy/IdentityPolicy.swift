/// Identity's default policy, in the oslo.policy language. The defaults follow Keystone's
/// admin/member/reader model with scope enforcement off (Keystone's long-standing deployment
/// default): a project admin administers the cloud, everyone may read their own user, groups,
/// projects and application credentials, and a token's owner may validate and revoke it.
/// Operators override any entry in `policy.yaml`.
public enum IdentityPolicy {
    public static let defaults: [String: String] = {
        var rules: [String: String] = [
            "admin_required": "role:admin",
            "service_role": "role:service",
            "service_or_admin": "rule:admin_required or rule:service_role",
            "owner": "user_id:%(user_id)s",
            "admin_or_owner": "rule:admin_required or rule:owner",
            "token_subject": "user_id:%(target.token.user_id)s",
            "admin_or_token_subject": "rule:admin_required or rule:token_subject",
            "service_admin_or_token_subject": "rule:service_or_admin or rule:token_subject",
            "identity:validate_token": "rule:service_admin_or_token_subject",
            "identity:check_token": "rule:admin_or_token_subject",
            "identity:revoke_token": "rule:admin_or_token_subject",
            "identity:get_auth_catalog": "",
            "identity:get_auth_projects": "",
            "identity:get_auth_domains": "",
            "identity:get_auth_system": "",
            "identity:get_domain": "rule:admin_required or token.project.domain.id:%(target.domain.id)s or domain_id:%(target.domain.id)s",
            "identity:get_project": "rule:admin_required or project_id:%(target.project.id)s",
            "identity:get_user": "rule:admin_or_owner",
            "identity:list_user_projects": "rule:admin_or_owner",
            "identity:list_groups_for_user": "rule:admin_or_owner",
            "identity:change_password": "rule:admin_or_owner",
            "identity:get_region": "",
            "identity:list_regions": "",
            // Unified limits: anyone authenticated reads registered limits and the model; a
            // limit is read by administrators and by its own project or domain.
            "identity:get_registered_limit": "",
            "identity:list_registered_limits": "",
            "identity:get_limit_model": "",
            // Anyone may read the default domain's password rules (Keystone's default).
            "identity:get_security_compliance_domain_config": "",
            "identity:list_limits": "",
            "identity:get_limit": "rule:admin_required or project_id:%(target.limit.project_id)s or domain_id:%(target.limit.domain.id)s"
                + " or domain_id:%(target.limit.project.domain_id)s",
        ]
        let credentialOwner = "rule:admin_required or user_id:%(target.credential.user_id)s"
        for action in ["create_credential", "get_credential", "update_credential", "delete_credential"] {
            rules["identity:\(action)"] = credentialOwner
        }
        // Trusts: the trustor creates and deletes; trustor and trustee read.
        let trustor = "user_id:%(target.trust.trustor_user_id)s", trustee = "user_id:%(target.trust.trustee_user_id)s"
        rules["identity:create_trust"] = "user_id:%(trust.trustor_user_id)s"
        rules["identity:list_trusts"] = "rule:admin_required"
        rules["identity:list_trusts_for_trustor"] = "rule:admin_required or \(trustor)"
        rules["identity:list_trusts_for_trustee"] = "rule:admin_required or \(trustee)"
        for action in ["get_trust", "list_roles_for_trust", "get_role_for_trust"] {
            rules["identity:\(action)"] = "rule:admin_required or \(trustor) or \(trustee)"
        }
        rules["identity:delete_trust"] = "rule:admin_required or \(trustor)"
        // EC2 credentials: their owner or an administrator; ec2tokens is for services.
        for action in ["ec2_create_credential", "ec2_list_credentials", "ec2_get_credential", "ec2_delete_credential"] {
            rules["identity:\(action)"] = credentialOwner
        }
        rules["identity:ec2tokens_validate"] = "rule:service_or_admin"
        rules["identity:s3tokens_validate"] = "rule:service_or_admin"
        for action in ["create_application_credential", "list_application_credentials", "get_application_credential",
                       "delete_application_credential", "list_access_rules", "get_access_rule", "delete_access_rule"] {
            rules["identity:\(action)"] = "rule:admin_or_owner"
        }
        // Everything else an administrator does.
        let adminActions = [
            "list_domains", "create_domain", "update_domain", "delete_domain",
            "list_projects", "create_project", "update_project", "delete_project", "update_project_tags",
            "list_users", "create_user", "update_user", "delete_user",
            "get_group", "list_groups", "create_group", "update_group", "delete_group",
            "list_users_in_group", "add_user_to_group", "check_user_in_group", "remove_user_from_group",
            "get_role", "list_roles", "create_role", "update_role", "delete_role",
            "create_domain_role", "get_domain_role", "list_domain_roles", "update_domain_role", "delete_domain_role",
            "create_implied_role", "get_implied_role", "delete_implied_role", "list_implied_roles", "list_role_inference_rules",
            "create_grant", "check_grant", "revoke_grant", "list_grants",
            "create_system_grant", "check_system_grant", "revoke_system_grant", "list_system_grants",
            "list_role_assignments",
            "create_region", "update_region", "delete_region",
            "get_service", "list_services", "create_service", "update_service", "delete_service",
            "get_endpoint", "list_endpoints", "create_endpoint", "update_endpoint", "delete_endpoint",
            "create_policy", "get_policy", "list_policies", "update_policy", "delete_policy",
            "create_endpoint_group", "get_endpoint_group", "list_endpoint_groups", "update_endpoint_group", "delete_endpoint_group",
            "add_endpoint_to_project", "check_endpoint_in_project", "remove_endpoint_from_project", "list_endpoints_for_project",
            "list_projects_for_endpoint", "add_endpoint_group_to_project", "get_endpoint_group_in_project", "remove_endpoint_group_from_project",
            "list_projects_associated_with_endpoint_group", "list_endpoints_associated_with_endpoint_group", "list_endpoint_groups_for_project",
            "create_registered_limits", "update_registered_limit", "delete_registered_limit",
            "create_domain_config", "get_domain_config", "update_domain_config", "delete_domain_config", "get_domain_config_default",
            "create_limits", "update_limit", "delete_limit",
            "create_identity_provider", "get_identity_provider", "list_identity_providers", "update_identity_provider", "delete_identity_provider",
            "create_protocol", "get_protocol", "list_protocols", "update_protocol", "delete_protocol",
            "create_mapping", "get_mapping", "list_mappings", "update_mapping", "delete_mapping",
            "create_service_provider", "get_service_provider", "list_service_providers", "update_service_provider", "delete_service_provider",
        ]
        for action in adminActions { rules["identity:\(action)"] = "rule:admin_required" }
        return rules
    }()
}
