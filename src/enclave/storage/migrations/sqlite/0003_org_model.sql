-- Issue 6: departments, org roles, announcement channels, read-only members.

-- An organization's department tree. parent_key is the parent's id, or '' for a root, so that
-- names are unique among siblings (name_key is the case-folded name).
CREATE TABLE departments (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    parent_id TEXT REFERENCES departments(id),
    parent_key TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, parent_key, name_key)
);
CREATE INDEX departments_parent ON departments (parent_id);

-- Who administers which department (and everything below it); the person's org role is
-- department_admin.
CREATE TABLE department_admins (
    user_id TEXT NOT NULL REFERENCES users(id),
    department_id TEXT NOT NULL REFERENCES departments(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, department_id)
);
CREATE INDEX department_admins_department ON department_admins (department_id);

-- The one department a person belongs to (NULL: none).
ALTER TABLE users ADD COLUMN department_id TEXT REFERENCES departments(id);
CREATE INDEX users_department ON users (department_id);

-- Announcement channels: only owners and moderators post. (Read-only members are the member
-- role 'reader', which needs no schema change.)
ALTER TABLE conversations ADD COLUMN announcement INTEGER NOT NULL DEFAULT 0;
