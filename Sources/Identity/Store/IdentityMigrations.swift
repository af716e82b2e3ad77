import NimbusStore

/// Identity's schema. Booleans are INTEGER 0/1 and times are epoch seconds (DOUBLE PRECISION)
/// so that both engines store the same values; JSON-valued columns (`extra`, `tags`, `roles`)
/// are TEXT.
public enum IdentityMigrations {
    public static let all: [Migration] = [
        Migration(service: "identity", version: 1, name: "initial schema", statements: [
            """
            CREATE TABLE identity_domain (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',
                enabled INTEGER NOT NULL DEFAULT 1, tags TEXT NOT NULL DEFAULT '[]', extra TEXT NOT NULL DEFAULT '{}')
            """,
            """
            CREATE TABLE identity_project (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL REFERENCES identity_domain(id),
                parent_id TEXT REFERENCES identity_project(id), description TEXT NOT NULL DEFAULT '',
                enabled INTEGER NOT NULL DEFAULT 1, tags TEXT NOT NULL DEFAULT '[]', extra TEXT NOT NULL DEFAULT '{}',
                UNIQUE (domain_id, name))
            """,
            "CREATE INDEX identity_project_parent ON identity_project (parent_id)",
            """
            CREATE TABLE identity_user (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL REFERENCES identity_domain(id),
                enabled INTEGER NOT NULL DEFAULT 1, password_hash TEXT, default_project_id TEXT,
                description TEXT, extra TEXT NOT NULL DEFAULT '{}', created_at DOUBLE PRECISION NOT NULL,
                UNIQUE (domain_id, name))
            """,
            """
            CREATE TABLE identity_group (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL REFERENCES identity_domain(id),
                description TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '{}', UNIQUE (domain_id, name))
            """,
            """
            CREATE TABLE identity_group_member (
                group_id TEXT NOT NULL REFERENCES identity_group(id) ON DELETE CASCADE,
                user_id TEXT NOT NULL REFERENCES identity_user(id) ON DELETE CASCADE,
                PRIMARY KEY (group_id, user_id))
            """,
            "CREATE INDEX identity_group_member_user ON identity_group_member (user_id)",
            // domain_id is '' for global roles so that the UNIQUE constraint also covers them
            // (NULLs never collide in a UNIQUE index).
            """
            CREATE TABLE identity_role (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL DEFAULT '',
                description TEXT, extra TEXT NOT NULL DEFAULT '{}', UNIQUE (domain_id, name))
            """,
            """
            CREATE TABLE identity_implied_role (
                prior_role_id TEXT NOT NULL REFERENCES identity_role(id) ON DELETE CASCADE,
                implied_role_id TEXT NOT NULL REFERENCES identity_role(id) ON DELETE CASCADE,
                PRIMARY KEY (prior_role_id, implied_role_id))
            """,
            // kind: user_project, group_project, user_domain, group_domain, user_system, group_system.
            // target_id is 'all' for the system.
            """
            CREATE TABLE identity_assignment (
                kind TEXT NOT NULL, actor_id TEXT NOT NULL, target_id TEXT NOT NULL,
                role_id TEXT NOT NULL REFERENCES identity_role(id) ON DELETE CASCADE,
                inherited INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (kind, actor_id, target_id, role_id, inherited))
            """,
            "CREATE INDEX identity_assignment_actor ON identity_assignment (actor_id)",
            "CREATE INDEX identity_assignment_target ON identity_assignment (target_id)",
            """
            CREATE TABLE identity_region (
                id TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '',
                parent_region_id TEXT REFERENCES identity_region(id), extra TEXT NOT NULL DEFAULT '{}')
            """,
            """
            CREATE TABLE identity_service (
                id TEXT PRIMARY KEY, type TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1,
                extra TEXT NOT NULL DEFAULT '{}')
            """,
            """
            CREATE TABLE identity_endpoint (
                id TEXT PRIMARY KEY, service_id TEXT NOT NULL REFERENCES identity_service(id) ON DELETE CASCADE,
                interface TEXT NOT NULL, url TEXT NOT NULL, region_id TEXT REFERENCES identity_region(id),
                enabled INTEGER NOT NULL DEFAULT 1, extra TEXT NOT NULL DEFAULT '{}')
            """,
            """
            CREATE TABLE identity_app_credential (
                id TEXT PRIMARY KEY, name TEXT NOT NULL,
                user_id TEXT NOT NULL REFERENCES identity_user(id) ON DELETE CASCADE,
                project_id TEXT NOT NULL, secret_hash TEXT NOT NULL, description TEXT,
                expires_at DOUBLE PRECISION, unrestricted INTEGER NOT NULL DEFAULT 0,
                roles TEXT NOT NULL DEFAULT '[]', created_at DOUBLE PRECISION NOT NULL,
                UNIQUE (user_id, name))
            """,
            // A token matches an event when every non-empty field of the event equals the
            // token's and the token was issued at or before issued_before.
            """
            CREATE TABLE identity_revocation (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL DEFAULT '', project_id TEXT NOT NULL DEFAULT '',
                domain_id TEXT NOT NULL DEFAULT '', audit_id TEXT NOT NULL DEFAULT '',
                app_credential_id TEXT NOT NULL DEFAULT '', issued_before DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX identity_revocation_revoked_at ON identity_revocation (revoked_at)",
        ]),
        Migration(service: "identity", version: 2, name: "credentials, policies, endpoint groups", statements: [
            // blob holds AES-GCM ciphertext (base64) under the credential key repository.
            """
            CREATE TABLE identity_credential (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES identity_user(id) ON DELETE CASCADE,
                project_id TEXT, type TEXT NOT NULL, blob TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '{}')
            """,
            "CREATE INDEX identity_credential_user ON identity_credential (user_id)",
            "CREATE TABLE identity_policy (id TEXT PRIMARY KEY, type TEXT NOT NULL, blob TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '{}')",
            """
            CREATE TABLE identity_endpoint_group (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', filters TEXT NOT NULL DEFAULT '{}')
            """,
        ]),
        Migration(service: "identity", version: 3, name: "unified limits", statements: [
            // region_id is NULL for a limit that applies in every region; the unique index reads
            // it as '' so that two region-less registered limits on one resource also collide.
            """
            CREATE TABLE identity_registered_limit (
                id TEXT PRIMARY KEY, service_id TEXT NOT NULL REFERENCES identity_service(id),
                region_id TEXT REFERENCES identity_region(id), resource_name TEXT NOT NULL,
                default_limit BIGINT NOT NULL, description TEXT)
            """,
            "CREATE UNIQUE INDEX identity_registered_limit_key ON identity_registered_limit (service_id, COALESCE(region_id, ''), resource_name)",
            // A limit's service, region and resource are its registered limit's. Exactly one of
            // project_id and domain_id is set; neither references its table, because deleting a
            // project or domain deletes its limits in the same transaction instead.
            """
            CREATE TABLE identity_limit (
                id TEXT PRIMARY KEY, registered_limit_id TEXT NOT NULL REFERENCES identity_registered_limit(id),
                project_id TEXT, domain_id TEXT, resource_limit BIGINT NOT NULL, description TEXT)
            """,
            """
            CREATE UNIQUE INDEX identity_limit_key ON identity_limit (registered_limit_id, COALESCE(project_id, ''), COALESCE(domain_id, ''))
            """,
            "CREATE INDEX identity_limit_project ON identity_limit (project_id)",
            "CREATE INDEX identity_limit_domain ON identity_limit (domain_id)",
        ]),
        Migration(service: "identity", version: 4, name: "trusts", statements: [
            // Neither user column references identity_user: deleting a user deletes its trusts
            // in the same transaction (and revokes their tokens), as Keystone does.
            """
            CREATE TABLE identity_trust (
                id TEXT PRIMARY KEY, trustor_user_id TEXT NOT NULL, trustee_user_id TEXT NOT NULL, project_id TEXT,
                impersonation INTEGER NOT NULL, expires_at DOUBLE PRECISION, remaining_uses INTEGER,
                redelegated_trust_id TEXT, redelegation_count INTEGER NOT NULL DEFAULT 0,
                extra TEXT NOT NULL DEFAULT '{}', created_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX identity_trust_trustor ON identity_trust (trustor_user_id)",
            "CREATE INDEX identity_trust_trustee ON identity_trust (trustee_user_id)",
            "CREATE INDEX identity_trust_project ON identity_trust (project_id)",
            // role_id does not reference identity_role: a deleted role drops out of the trust's
            // role list, and tokens from the trust stop validating, as in Keystone.
            """
            CREATE TABLE identity_trust_role (
                trust_id TEXT NOT NULL REFERENCES identity_trust(id) ON DELETE CASCADE, role_id TEXT NOT NULL,
                PRIMARY KEY (trust_id, role_id))
            """,
            // A revocation event may name a trust: its tokens die with it.
            "ALTER TABLE identity_revocation ADD COLUMN trust_id TEXT NOT NULL DEFAULT ''",
        ]),
        Migration(service: "identity", version: 5, name: "access rules", statements: [
            // A user's access rules, shared by their application credentials; the UNIQUE index
            // makes an identical rule in a second credential reuse the first's row.
            """
            CREATE TABLE identity_access_rule (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES identity_user(id) ON DELETE CASCADE,
                service TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
                UNIQUE (user_id, service, method, path))
            """,
            // No cascade from the rule: a rule in use cannot be deleted (Keystone's 403). `position`
            // keeps the credential's rules in the order it was created with.
            """
            CREATE TABLE identity_app_credential_access_rule (
                app_credential_id TEXT NOT NULL REFERENCES identity_app_credential(id) ON DELETE CASCADE,
                access_rule_id TEXT NOT NULL REFERENCES identity_access_rule(id), position INTEGER NOT NULL,
                PRIMARY KEY (app_credential_id, access_rule_id))
            """,
            "CREATE INDEX identity_app_credential_access_rule_rule ON identity_app_credential_access_rule (access_rule_id)",
        ]),
        Migration(service: "identity", version: 6, name: "domain configuration", statements: [
            // value is the option's JSON; sensitive options (the LDAP password) are stored but
            // never shown.
            """
            CREATE TABLE identity_domain_config (
                domain_id TEXT NOT NULL REFERENCES identity_domain(id) ON DELETE CASCADE,
                group_name TEXT NOT NULL, option_name TEXT NOT NULL, value TEXT NOT NULL, sensitive INTEGER NOT NULL,
                PRIMARY KEY (domain_id, group_name, option_name))
            """,
        ]),
        Migration(service: "identity", version: 7, name: "federation: identity providers, protocols, mappings, service providers", statements: [
            """
            CREATE TABLE identity_idp (
                id TEXT PRIMARY KEY, enabled INTEGER NOT NULL, description TEXT, domain_id TEXT NOT NULL, authorization_ttl INTEGER)
            """,
            // A remote id names one provider only: the primary key enforces it across providers.
            "CREATE TABLE identity_idp_remote_id (remote_id TEXT PRIMARY KEY, idp_id TEXT NOT NULL REFERENCES identity_idp(id))",
            "CREATE INDEX identity_idp_remote_id_idp ON identity_idp_remote_id (idp_id)",
            "CREATE TABLE identity_mapping (id TEXT PRIMARY KEY, rules TEXT NOT NULL, schema_version TEXT NOT NULL)",
            """
            CREATE TABLE identity_federation_protocol (
                idp_id TEXT NOT NULL REFERENCES identity_idp(id), id TEXT NOT NULL, mapping_id TEXT NOT NULL, remote_id_attribute TEXT,
                PRIMARY KEY (idp_id, id))
            """,
            """
            CREATE TABLE identity_service_provider (
                id TEXT PRIMARY KEY, auth_url TEXT NOT NULL, sp_url TEXT NOT NULL, description TEXT, enabled INTEGER NOT NULL,
                relay_state_prefix TEXT NOT NULL)
            """,
        ]),
        // An association goes with its endpoint, endpoint group or project (the keys cascade).
        Migration(service: "identity", version: 8, name: "endpoint filter associations", statements: [
            """
            CREATE TABLE identity_project_endpoint (
                endpoint_id TEXT NOT NULL REFERENCES identity_endpoint(id) ON DELETE CASCADE,
                project_id TEXT NOT NULL REFERENCES identity_project(id) ON DELETE CASCADE, PRIMARY KEY (endpoint_id, project_id))
            """,
            """
            CREATE TABLE identity_project_endpoint_group (
                endpoint_group_id TEXT NOT NULL REFERENCES identity_endpoint_group(id) ON DELETE CASCADE,
                project_id TEXT NOT NULL REFERENCES identity_project(id) ON DELETE CASCADE, PRIMARY KEY (endpoint_group_id, project_id))
            """,
        ]),
    ]
}
