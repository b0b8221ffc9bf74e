"""The OMOP CDM v5.4 tables the adapter reads and the exporter writes (columns and types).

Room: ``sources`` (OMOP adapter). Column lists follow the OHDSI CDM v5.4 specification
(https://ohdsi.github.io/CommonDataModel/cdm54.html) for the clinical tables used here, plus
``concept_ancestor`` (vocabulary; optional, used to roll clinical drugs up to ingredients).
Datetimes are ``TIMESTAMP`` without a zone, read and written as UTC.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

__all__ = ["CDM_TABLES", "TRIAL_TABLES", "cdm_type"]

_I, _S, _D, _T, _F = "BIGINT", "VARCHAR", "DATE", "TIMESTAMP", "DOUBLE"


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in spec.split():
        name, kind = item.split(":")
        out.append((name, {"i": _I, "s": _S, "d": _D, "t": _T, "f": _F}[kind]))
    return tuple(out)


#: table -> ((column, DuckDB type), ...), CDM v5.4.
CDM_TABLES: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType({
    "person": _cols("""person_id:i gender_concept_id:i year_of_birth:i month_of_birth:i day_of_birth:i
        birth_datetime:t race_concept_id:i ethnicity_concept_id:i location_id:i provider_id:i care_site_id:i
        person_source_value:s gender_source_value:s gender_source_concept_id:i race_source_value:s
        race_source_concept_id:i ethnicity_source_value:s ethnicity_source_concept_id:i"""),
    "observation_period": _cols("""observation_period_id:i person_id:i observation_period_start_date:d
        observation_period_end_date:d period_type_concept_id:i"""),
    "care_site": _cols("""care_site_id:i care_site_name:s place_of_service_concept_id:i location_id:i
        care_site_source_value:s place_of_service_source_value:s"""),
    "visit_occurrence": _cols("""visit_occurrence_id:i person_id:i visit_concept_id:i visit_start_date:d
        visit_start_datetime:t visit_end_date:d visit_end_datetime:t visit_type_concept_id:i provider_id:i
        care_site_id:i visit_source_value:s visit_source_concept_id:i admitted_from_concept_id:i
        admitted_from_source_value:s discharged_to_concept_id:i discharged_to_source_value:s
        preceding_visit_occurrence_id:i"""),
    "visit_detail": _cols("""visit_detail_id:i person_id:i visit_detail_concept_id:i visit_detail_start_date:d
        visit_detail_start_datetime:t visit_detail_end_date:d visit_detail_end_datetime:t
        visit_detail_type_concept_id:i provider_id:i care_site_id:i visit_detail_source_value:s
        visit_detail_source_concept_id:i admitted_from_concept_id:i admitted_from_source_value:s
        discharged_to_source_value:s discharged_to_concept_id:i preceding_visit_detail_id:i
        parent_visit_detail_id:i visit_occurrence_id:i"""),
    "measurement": _cols("""measurement_id:i person_id:i measurement_concept_id:i measurement_date:d
        measurement_datetime:t measurement_time:s measurement_type_concept_id:i operator_concept_id:i
        value_as_number:f value_as_concept_id:i unit_concept_id:i range_low:f range_high:f provider_id:i
        visit_occurrence_id:i visit_detail_id:i measurement_source_value:s measurement_source_concept_id:i
        unit_source_value:s unit_source_concept_id:i value_source_value:s measurement_event_id:i
        meas_event_field_concept_id:i"""),
    "procedure_occurrence": _cols("""procedure_occurrence_id:i person_id:i procedure_concept_id:i procedure_date:d
        procedure_datetime:t procedure_end_date:d procedure_end_datetime:t procedure_type_concept_id:i
        modifier_concept_id:i quantity:i provider_id:i visit_occurrence_id:i visit_detail_id:i
        procedure_source_value:s procedure_source_concept_id:i modifier_source_value:s"""),
    "device_exposure": _cols("""device_exposure_id:i person_id:i device_concept_id:i device_exposure_start_date:d
        device_exposure_start_datetime:t device_exposure_end_date:d device_exposure_end_datetime:t
        device_type_concept_id:i unique_device_id:s production_id:s quantity:i provider_id:i
        visit_occurrence_id:i visit_detail_id:i device_source_value:s device_source_concept_id:i
        unit_concept_id:i unit_source_value:s unit_source_concept_id:i"""),
    "drug_exposure": _cols("""drug_exposure_id:i person_id:i drug_concept_id:i drug_exposure_start_date:d
        drug_exposure_start_datetime:t drug_exposure_end_date:d drug_exposure_end_datetime:t verbatim_end_date:d
        drug_type_concept_id:i stop_reason:s refills:i quantity:f days_supply:i sig:s route_concept_id:i
        lot_number:s provider_id:i visit_occurrence_id:i visit_detail_id:i drug_source_value:s
        drug_source_concept_id:i route_source_value:s dose_unit_source_value:s"""),
    "condition_occurrence": _cols("""condition_occurrence_id:i person_id:i condition_concept_id:i
        condition_start_date:d condition_start_datetime:t condition_end_date:d condition_end_datetime:t
        condition_type_concept_id:i condition_status_concept_id:i stop_reason:s provider_id:i
        visit_occurrence_id:i visit_detail_id:i condition_source_value:s condition_source_concept_id:i
        condition_status_source_value:s"""),
    "death": _cols("""person_id:i death_date:d death_datetime:t death_type_concept_id:i cause_concept_id:i
        cause_source_value:s cause_source_concept_id:i"""),
    "concept_ancestor": _cols("""ancestor_concept_id:i descendant_concept_id:i min_levels_of_separation:i
        max_levels_of_separation:i"""),
})

#: Trial tables: not OMOP; they sit beside the OMOP tables under their CLIF names and pass through.
TRIAL_TABLES = ("enrollment", "administration", "adverse_event")


def cdm_type(table: str, column: str) -> str:
    """DuckDB type of ``table.column`` in the CDM (KeyError when not listed)."""
    return dict(CDM_TABLES[table])[column]
