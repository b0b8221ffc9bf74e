"""The `spec` room: the study file, parsed into frozen pydantic models and hashed."""

from ._load import load_study, study_from_dict
from ._models import Covariate, Study
from ._template import template_text

__all__ = ["Study", "Covariate", "load_study", "study_from_dict", "template_text"]
