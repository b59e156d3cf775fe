"""docs/permissions.md agrees with the policy: its tables are what the code decides."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from enclave.domain.models import OrgRole
from enclave.domain.policy import ORG_RULES, SUBTREE_RULES, OrgAction

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "permissions.md"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_permissions_doc", ROOT / "scripts/gen_permissions_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_permission_tables_are_up_to_date() -> None:
    gen = _generator()
    text = DOC.read_text("utf-8")
    assert gen.updated(text) == text, "run .venv/bin/python scripts/gen_permissions_doc.py"


def test_every_org_action_has_a_rule_and_a_row() -> None:
    """A new action without a rule would be denied to everyone silently; make it explicit."""
    text = DOC.read_text("utf-8")
    for action in OrgAction:
        assert action in ORG_RULES or action in SUBTREE_RULES, action
        assert f"| `{action.value}` |" in text, action


def test_guests_and_compliance_officers_never_administer_chat() -> None:
    """The brief's rules, independent of how the table is written."""
    chat_admin = {
        OrgAction.CREATE_USER,
        OrgAction.DEACTIVATE_USER,
        OrgAction.SET_USER_ROLE,
        OrgAction.MOVE_USER,
        OrgAction.CHANGE_ORG_SETTINGS,
        OrgAction.MANAGE_DEPARTMENTS,
    }
    for action in chat_admin:
        for role in (OrgRole.GUEST, OrgRole.COMPLIANCE_OFFICER, OrgRole.MEMBER):
            assert role not in ORG_RULES.get(action, frozenset()), (action, role)
            assert role not in SUBTREE_RULES.get(action, frozenset()), (action, role)
    assert OrgRole.COMPLIANCE_OFFICER in ORG_RULES[OrgAction.READ_AUDIT]
    for action in (OrgAction.BROWSE_CHANNELS, OrgAction.BROWSE_DIRECTORY):
        assert OrgRole.GUEST not in ORG_RULES[action]
