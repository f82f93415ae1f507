"""Agreement, reliability and aggregation metrics: pure numpy/pandas, no Django.

The service layer loads annotations into long form (unit, rater, value), encodes them with
``ratings_from_long`` / ``ratings_from_frame`` and calls these functions; see README.md for the formulas.
"""

from annotation.agreement.aggregation import (
    CrowdResult,
    dawid_skene,
    dimension_summary,
    mace,
    majority_vote,
    soft_labels,
)
from annotation.agreement.alpha import (
    LEVELS,
    AlphaResult,
    Metric,
    krippendorff_alpha,
    metric_for_level,
    metric_from_matrix,
)
from annotation.agreement.breakdown import alpha_by_group, annotator_agreement, pairwise_alpha
from annotation.agreement.kappa import (
    KappaResult,
    RatingCounts,
    cohen_kappa,
    cohen_kappa_for_raters,
    cohen_kappa_from_table,
    fleiss_kappa,
    fleiss_kappa_from_counts,
    observed_agreement,
    rating_counts,
)
from annotation.agreement.model_eval import (
    ClassificationReport,
    MultiLabelReport,
    calibration_report,
    classification_report,
    concordance_correlation,
    macro_f1,
    multi_label_report,
)
from annotation.agreement.ratings import (
    AgreementInputError,
    Ratings,
    ratings_from_frame,
    ratings_from_long,
    ratings_from_matrix,
)
from annotation.agreement.sets import (
    UNANSWERED,
    alpha_per_label,
    label_level_ratings,
    label_set_ratings,
    masi_alpha,
    masi_distance,
    masi_matrix,
    masi_usable,
    per_label_alpha,
)

__all__ = [
    "LEVELS",
    "UNANSWERED",
    "AgreementInputError",
    "AlphaResult",
    "ClassificationReport",
    "MultiLabelReport",
    "CrowdResult",
    "KappaResult",
    "Metric",
    "RatingCounts",
    "Ratings",
    "alpha_by_group",
    "alpha_per_label",
    "annotator_agreement",
    "calibration_report",
    "classification_report",
    "macro_f1",
    "multi_label_report",
    "cohen_kappa",
    "cohen_kappa_for_raters",
    "cohen_kappa_from_table",
    "concordance_correlation",
    "dawid_skene",
    "dimension_summary",
    "fleiss_kappa",
    "fleiss_kappa_from_counts",
    "krippendorff_alpha",
    "label_level_ratings",
    "label_set_ratings",
    "mace",
    "majority_vote",
    "masi_alpha",
    "masi_distance",
    "masi_matrix",
    "masi_usable",
    "metric_for_level",
    "metric_from_matrix",
    "observed_agreement",
    "pairwise_alpha",
    "per_label_alpha",
    "rating_counts",
    "ratings_from_frame",
    "ratings_from_long",
    "ratings_from_matrix",
    "soft_labels",
]
