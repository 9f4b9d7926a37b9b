"""The privacy policy as one typed object, loaded and validated once from YAML (docs/design.md §1).

Every rule carries the clause of the policy it comes from, so any finding can cite it. Code asks the
`Policy` questions; nobody re-parses the file and no column list, period or threshold lives elsewhere.
"""

from transforms.policy.loader import load_policy
from transforms.policy.model import (
    LINEAGE_COLUMNS, RECORD_ID, AccessGroup, AccessRule, AggregateReleaseRule, AnonymousDataset, ConsentPurpose,
    ConsentRule, FieldRule, LatenessRule, Operator, Policy, Reporting, RetentionRule, RoamingRule, SubjectRight,
    SubjectRightsRule, ZoneAccess,
)
from transforms.policy.period import Period, PolicyError

__all__ = ["LINEAGE_COLUMNS", "RECORD_ID", "AccessGroup", "AccessRule", "AggregateReleaseRule", "AnonymousDataset",
           "ConsentPurpose", "ConsentRule", "FieldRule", "LatenessRule", "Operator", "Period", "Policy", "PolicyError",
           "Reporting", "RetentionRule", "RoamingRule", "SubjectRight", "SubjectRightsRule", "ZoneAccess", "load_policy"]
