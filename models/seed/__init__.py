"""The campaign plan (``data/seed.json``): schema and loading (``schema``), checks (``check``), import (``importer``).

Part of ``models``: ``scheduler``, ``bot`` and ``qcbot`` import it (the names below), ``models`` modules too.
"""

from models.scoring import attainable_points, criteria_points, item_score, reachable_points
from models.seed.check import check_seed
from models.seed.importer import ImportReport, import_seed, seed_digest
from models.seed.schema import (
    POINT_STEP,
    SCHEMA_VERSION,
    CampaignSpec,
    CriterionSpec,
    Finding,
    PhaseSpec,
    ScoreCategorySpec,
    ScoreItemSpec,
    SectionSpec,
    SeedDoc,
    SeedError,
    TaskGroupSpec,
    TaskSpec,
    UnitGroupSpec,
    UnitIndex,
    UnitSpec,
    load_seed,
    parse_seed,
    plan_start,
)

__all__ = [
    "SCHEMA_VERSION",
    "POINT_STEP",
    "SeedError",
    "Finding",
    "ImportReport",
    "SeedDoc",
    "CampaignSpec",
    "UnitSpec",
    "UnitGroupSpec",
    "PhaseSpec",
    "TaskGroupSpec",
    "TaskSpec",
    "ScoreCategorySpec",
    "ScoreItemSpec",
    "CriterionSpec",
    "SectionSpec",
    "UnitIndex",
    "load_seed",
    "parse_seed",
    "check_seed",
    "criteria_points",
    "item_score",
    "attainable_points",
    "reachable_points",
    "plan_start",
    "import_seed",
    "seed_digest",
]
