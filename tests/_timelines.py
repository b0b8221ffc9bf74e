"""Thirty hand-computed patient timelines for the outcomes room, each with its expected endpoints.

Every expected number below was worked out by hand from the timeline and the written definitions
(``controlarm.outcomes``: day d is the 24-hour window ``[index + (d-1) days, index + d days)``; a
respiratory record holds until the next record of its hospitalization, at most 24 h, never past
discharge; records at one instant are ordered CPAP < Face Mask < High Flow NC < IMV < NIPPV <
Nasal Cannula < Other < Room Air < Trach Collar, so only the last of them holds; a free day is a
day 1..28 that no support interval overlaps; death at or before index + N days means dead at day
N; vital status is known to the cutoff 2021-01-01). Nothing here was copied from controlarm's output.

Notation: ``D(d, h, m)`` is index + d days + h hours + m minutes. Each patient's index is at 08:00
UTC, five days after the previous patient's (the absolute date never matters). "every X h from a
to b" means records at a, a + X h, ... strictly before b. The working is in each timeline's
``working``; ``expected`` holds the endpoints of the default study (``STUDY`` below); with
``free_days_death_value = -1`` every free-days endpoint of a patient dead by day 28 becomes -1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

BASE = pd.Timestamp("2020-03-01 08:00", tz="UTC")
NAN = float("nan")


def D(d: float, h: int = 0, m: int = 0) -> pd.Timedelta:
    return pd.Timedelta(days=d, hours=h, minutes=m)


def every(device: str, start: pd.Timedelta, end: pd.Timedelta, hours: int, stay: int = 0) -> list[tuple]:
    out, t = [], start
    while t < end:
        out.append((stay, t, device))
        t += pd.Timedelta(hours=hours)
    return out


@dataclass
class Timeline:
    id: str
    title: str
    working: str
    stays: list[tuple[pd.Timedelta, pd.Timedelta]]            # (admission, discharge); stay 0 holds the index
    adt: list[tuple[int, str, pd.Timedelta, pd.Timedelta]]    # (stay, location, in, out)
    resp: list[tuple[int, pd.Timedelta, str]]                 # (stay, time, device)
    expected: dict[str, float]
    ecmo: list[tuple[int, pd.Timedelta, str]] = field(default_factory=list)
    death: pd.Timedelta | None = None
    labs: list[tuple[int, pd.Timedelta, float, str]] = field(default_factory=list)  # d_dimer (stay, t, value, unit)


def _ep(alive28, alive60, time, event, need, imv, hfno, oxygen, icu, hospital, who1, who7, who28, dimer=NAN, **extra):
    e = {"alive_d28": alive28, "alive_d60": alive60, "death_time_days": time, "death_event": event,
         "need_imv": need, "imv_free_days_28": imv, "hfno_free_days_28": hfno, "oxygen_free_days_28": oxygen,
         "icu_free_days_28": icu, "hospital_free_days_28": hospital, "who_d1": who1, "who_d7": who7,
         "who_d28": who28, "d_dimer_d7": dimer}
    e.update(extra)
    return e


def _room_air_ward(dis: float) -> dict:
    """Ward stay from the index to D(dis), room air every 12 h."""
    return dict(stays=[(D(0), D(dis))], adt=[(0, "ward", D(0), D(dis))], resp=every("Room Air", D(0), D(dis), 12))


TIMELINES: list[Timeline] = [
    Timeline(
        "T01", "survivor on room air in a ward",
        """Admitted at the index, ward, room air, home at D10. No support: IMV/HFNO/oxygen/ICU-free 28.
        In hospital [D0, D10) touches days 1-10: hospital-free 28 - 10 = 18. WHO day 1 and 7: in
        hospital without oxygen = 4; day 28: out of hospital = 3. Alive at 28 and 60 (known to the
        cutoff), time to death censored at 60, no event. Never on IMV/ECMO: need_imv 0.""",
        **_room_air_ward(10),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 28, 28, 18, 4, 4, 3),
    ),
    Timeline(
        "T02", "death during day 28 on IMV",
        """Admitted D-1 to ICU on IMV (every 6 h), dies in ICU at D27 12:00 (discharge = death). Death
        D27.5 <= D28: dead at day 28 and 60, time 27.5, event. On IMV at the index (the D-1 18:00
        record holds to D0, the D0 record from D0): need_imv missing. Dead by day 28: every free-days
        endpoint 0. Components: alive 0; IMV-free days alive = 0 (IMV on days 1-27, the days alive to
        their end); hospital-free days alive = 0. WHO day 1 and 7: IMV = 7; day 28: dead = 10.""",
        stays=[(D(-1), D(27, 12))], adt=[(0, "icu", D(-1), D(27, 12))],
        resp=every("IMV", D(-1), D(27, 12), 6), death=D(27, 12),
        expected=_ep(0, 0, 27.5, 1, NAN, 0, 0, 0, 0, 0, 7, 7, 10,
                     imv_free_days_28_alive=0, imv_free_days_28_days=0, hospital_free_days_28_days=0),
    ),
    Timeline(
        "T03", "death exactly at index + 28 days, after discharge",
        """Admitted at the index, ward; nasal cannula every 12 h D0-D3, room air every 12 h D3-D10;
        home at D10; dies at home exactly at D28 00:00 (index + 28 days). Death <= index + 28 d: dead
        at day 28 (and 60), time 28.0, event; every free-days endpoint 0. need_imv 0. WHO day 1: NC =
        5; day 7: room air in hospital = 4; day 28: dead by its end = 10. Components: alive 0; the
        days alive to their end are 1-27 (day 28 ends at the death): IMV 27, HFNO 27, ICU 27; oxygen:
        NC [D0, D3) on days 1-3 -> 24; hospital [D0, D10) on days 1-10 -> 17.""",
        stays=[(D(0), D(10))], adt=[(0, "ward", D(0), D(10))],
        resp=every("Nasal Cannula", D(0), D(3), 12) + every("Room Air", D(3), D(10), 12), death=D(28),
        expected=_ep(0, 0, 28.0, 1, 0, 0, 0, 0, 0, 0, 5, 4, 10,
                     imv_free_days_28_alive=0, imv_free_days_28_days=27, hfno_free_days_28_days=27,
                     oxygen_free_days_28_days=24, icu_free_days_28_days=27, hospital_free_days_28_days=17),
    ),
    Timeline(
        "T04", "death one minute after day 28 ends",
        """As T03 but the death is at D28 00:01. Alive at day 28 (death > index + 28 d), dead at 60;
        time 28 + 1/1440 days, event. Free days counted: oxygen NC days 1-3 -> 25; hospital days 1-10
        -> 18; others 28. WHO day 28: alive, out of hospital = 3. Components: alive 1, days = the
        endpoint.""",
        stays=[(D(0), D(10))], adt=[(0, "ward", D(0), D(10))],
        resp=every("Nasal Cannula", D(0), D(3), 12) + every("Room Air", D(3), D(10), 12), death=D(28, 0, 1),
        expected=_ep(1, 0, 28 + 1 / 1440, 1, 0, 28, 28, 25, 28, 18, 5, 4, 3,
                     oxygen_free_days_28_alive=1, oxygen_free_days_28_days=25),
    ),
    Timeline(
        "T05", "extubation then reintubation",
        """Admitted D-1; ICU [D-1, D11), ward to discharge D15. IMV every 6 h D-1 to D3 06:00 (last at
        D3 00:00, held to the next record); HFNC every 6 h D3 06:00-D5; IMV again every 6 h D5-D9; NC
        every 12 h D9-D12; room air every 12 h D12-D15 (the last held to discharge). IMV [D-1, D3 06:00)
        touches days 1-4 and [D5, D9) days 6-9: 8 days -> IMV-free 20. HFNC [D3 06:00, D5): days 4-5 ->
        26. Oxygen [D-1, D12): days 1-12 -> 16. ICU days 1-11 -> 17. Hospital [D-1, D15): days 1-15
        -> 13. On IMV at the index (the D0 record): need_imv missing. WHO day 1 and 7 (IMV on
        [D6, D7)): 7; day 28: 3.""",
        stays=[(D(-1), D(15))], adt=[(0, "icu", D(-1), D(11)), (0, "ward", D(11), D(15))],
        resp=(every("IMV", D(-1), D(3, 6), 6) + every("High Flow NC", D(3, 6), D(5), 6) + every("IMV", D(5), D(9), 6)
              + every("Nasal Cannula", D(9), D(12), 12) + every("Room Air", D(12), D(15), 12)),
        expected=_ep(1, 1, 60.0, 0, NAN, 20, 26, 16, 17, 13, 7, 7, 3),
    ),
    Timeline(
        "T06", "ECMO during IMV",
        """Admitted D-2; ICU [D-2, D14), ward to D20. IMV every 6 h D-2-D10, NC every 12 h D10-D14,
        room air every 12 h D14-D20. ecmo_mcs "VV ECMO" every 8 h from D2 to D5 16:00 inclusive; the
        last ECMO record holds 24 h: ECMO [D2, D6 16:00), days 3-7, inside the IMV days 1-10 -> IMV
        (or ECMO)-free 18. Oxygen [D-2, D14): 14. ICU days 1-14: 14. Hospital days 1-20: 8. HFNO 28.
        On IMV at the index: need_imv missing. WHO day 1: 7; day 7 [D6, D7) has ECMO: 9; day 28: 3.""",
        stays=[(D(-2), D(20))], adt=[(0, "icu", D(-2), D(14)), (0, "ward", D(14), D(20))],
        resp=every("IMV", D(-2), D(10), 6) + every("Nasal Cannula", D(10), D(14), 12) + every("Room Air", D(14), D(20), 12),
        ecmo=every("VV ECMO", D(2), D(5, 17), 8),
        expected=_ep(1, 1, 60.0, 0, NAN, 18, 28, 14, 14, 8, 7, 9, 3),
    ),
    Timeline(
        "T07", "ECMO without IMV after the index (need for IMV or ECMO)",
        """Admitted at the index; ICU [D0, D12), ward to D16. HFNC every 6 h D0-D3, NIPPV every 6 h
        D3-D8 (awake ECMO), NC every 12 h D8-D12, room air D12-D16. VV ECMO every 8 h D3 to D6 16:00:
        ECMO [D3, D7 16:00) on days 4-8 -> IMV-free 23; need_imv 1 (neither at the index, ECMO after).
        HFNO days 1-3 -> 25. Oxygen [D0, D12) -> 16. ICU -> 16. Hospital days 1-16 -> 12. WHO day 1:
        HFNC = 6; day 7: ECMO = 9; day 28: 3.""",
        stays=[(D(0), D(16))], adt=[(0, "icu", D(0), D(12)), (0, "ward", D(12), D(16))],
        resp=(every("High Flow NC", D(0), D(3), 6) + every("NIPPV", D(3), D(8), 6)
              + every("Nasal Cannula", D(8), D(12), 12) + every("Room Air", D(12), D(16), 12)),
        ecmo=every("VV ECMO", D(3), D(6, 17), 8),
        expected=_ep(1, 1, 60.0, 0, 1, 23, 25, 16, 16, 12, 6, 9, 3),
    ),
    Timeline(
        "T08", "a gap in the records longer than the maximum gap",
        """Admitted at the index, ward, home at D8. HFNC at D0 and D0 12:00, then nothing until HFNC at
        D3 and D3 12:00, then room air every 12 h D4-D8. The D0 12:00 record holds only 24 h (to D1
        12:00), so day 3 [D2, D3) has no support. HFNC [D0, D1 12:00) days 1-2 and [D3, D4) day 4 ->
        HFNO-free 25, oxygen-free 25. Hospital days 1-8 -> 20. WHO day 1: 6; day 7: room air in
        hospital = 4; day 28: 3. need_imv 0.""",
        stays=[(D(0), D(8))], adt=[(0, "ward", D(0), D(8))],
        resp=[(0, D(0), "High Flow NC"), (0, D(0, 12), "High Flow NC"), (0, D(3), "High Flow NC"),
              (0, D(3, 12), "High Flow NC")] + every("Room Air", D(4), D(8), 12),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 25, 25, 28, 20, 6, 4, 3),
    ),
    Timeline(
        "T09", "discharged alive before day 28",
        """Admitted D-1; ICU [D-1, D3), ward to discharge home at D6. HFNC every 6 h D-1-D2, NC every
        12 h D2-D4, room air every 12 h D4-D6 (the last held to discharge). HFNO days 1-2 -> 26.
        Oxygen days 1-4 -> 24. ICU days 1-3 -> 25. Hospital [D-1, D6) days 1-6 -> 22; days after
        discharge alive count as free. WHO day 1: 6; day 7 [D6, D7): out of hospital = 3; day 28: 3.""",
        stays=[(D(-1), D(6))], adt=[(0, "icu", D(-1), D(3)), (0, "ward", D(3), D(6))],
        resp=every("High Flow NC", D(-1), D(2), 6) + every("Nasal Cannula", D(2), D(4), 12) + every("Room Air", D(4), D(6), 12),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 26, 24, 25, 22, 6, 3, 3),
    ),
    Timeline(
        "T10", "readmission with IMV",
        """Stay 1: admitted D-1, ward, NC every 12 h D-1-D8, home at D8. Stay 2 (readmission): D15-D22,
        ICU [D15, D19), ward after; IMV every 6 h D15-D18, room air every 12 h D18-D22. Readmissions
        count: IMV [D15, D18) days 16-18 -> IMV-free 25, need_imv 1. Oxygen: NC days 1-8 plus IMV days
        16-18 = 11 -> 17. ICU days 16-19 -> 24. Hospital days 1-8 and 16-22 = 15 -> 13. HFNO 28. WHO
        day 1 and 7: NC = 5; day 28: 3.""",
        stays=[(D(-1), D(8)), (D(15), D(22))],
        adt=[(0, "ward", D(-1), D(8)), (1, "icu", D(15), D(19)), (1, "ward", D(19), D(22))],
        resp=(every("Nasal Cannula", D(-1), D(8), 12) + every("IMV", D(15), D(18), 6, stay=1)
              + every("Room Air", D(18), D(22), 12, stay=1)),
        expected=_ep(1, 1, 60.0, 0, 1, 25, 28, 17, 24, 13, 5, 5, 3),
    ),
    Timeline(
        "T11", "D-dimer tie: two values equally far from day 7",
        """As T01 (ward, room air, home at D10). D-dimer 300 ng/mL at D5 (two days out: outside ±1 day),
        800 ng/mL at D6 20:00 and 500 ng/mL at D7 04:00: both 4 h from index + 7 days; the tie goes to
        the earlier time: 800 µg/L FEU.""",
        **_room_air_ward(10),
        labs=[(0, D(5), 300.0, "ng/mL"), (0, D(6, 20), 800.0, "ng/mL"), (0, D(7, 4), 500.0, "ng/mL")],
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 28, 28, 18, 4, 4, 3, 800.0),
    ),
    Timeline(
        "T12", "D-dimer tie: two values at the same instant",
        """As T01. 600 µg/L and 900 µg/L both at D7 02:00; 100 at D8 06:00 (30 h out). Same distance
        and same time: the larger value wins -> 900.""",
        **_room_air_ward(10),
        labs=[(0, D(7, 2), 600.0, "ug/L"), (0, D(7, 2), 900.0, "ug/L"), (0, D(8, 6), 100.0, "ug/L")],
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 28, 28, 18, 4, 4, 3, 900.0),
    ),
    Timeline(
        "T13", "missing labs",
        """As T01. D-dimer 400 at D3 and 700 at D9 lie two days or more from day 7; the D7 row has no
        value (lab_value_numeric missing) and is not a candidate: d_dimer_d7 missing.""",
        **_room_air_ward(10),
        labs=[(0, D(3), 400.0, "ng/mL"), (0, D(9), 700.0, "ng/mL"), (0, D(7), NAN, "ng/mL")],
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 28, 28, 18, 4, 4, 3, NAN),
    ),
    Timeline(
        "T14", "D-dimer unit mismatch",
        """As T01. At D7 exactly 5.0 "mmol/L" (not a mass concentration: cannot be harmonised, so not a
        candidate); at D7 01:00 0.25 mg/L DDU = 0.25 x 1000 x 2 = 500 µg/L FEU; at D7 06:00 700 ng/mL
        = 700 µg/L FEU. Nearest harmonised value: 500.""",
        **_room_air_ward(10),
        labs=[(0, D(7), 5.0, "mmol/L"), (0, D(7, 1), 0.25, "mg/L DDU"), (0, D(7, 6), 700.0, "ng/mL")],
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 28, 28, 18, 4, 4, 3, 500.0),
    ),
    Timeline(
        "T15", "index at the moment of ICU admission",
        """Admitted D-1 12:00 to a ward, ICU from the index D0 to D5, ward to D9. HFNC every 6 h D-1
        12:00-D4, NC every 12 h D4-D6, room air D6-D9. ICU [D0, D5) touches days 1-5 (it ends exactly
        where day 6 starts) -> ICU-free 23. HFNO days 1-4 -> 24. Oxygen days 1-6 -> 22. Hospital
        [D-1 12:00, D9) days 1-9 -> 19. WHO day 1: 6; day 7: room air in hospital = 4; day 28: 3.""",
        stays=[(D(-1, 12), D(9))],
        adt=[(0, "ward", D(-1, 12), D(0)), (0, "icu", D(0), D(5)), (0, "ward", D(5), D(9))],
        resp=every("High Flow NC", D(-1, 12), D(4), 6) + every("Nasal Cannula", D(4), D(6), 12) + every("Room Air", D(6), D(9), 12),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 24, 22, 23, 19, 6, 4, 3),
    ),
    Timeline(
        "T16", "intubated after the index, dies in ICU on day 10",
        """Admitted at the index to ICU; HFNC every 6 h D0-D2, IMV every 6 h D2 to death at D9 06:00.
        Dead at 28 and 60; time 9.25; event. need_imv 1 (HFNC at the index). Free days 0. WHO day 1:
        6; day 7: 7; day 28: 10. Components: alive 0; the days alive to their end are 1-9: IMV
        [D2, D9 06:00) covers days 3-10, leaving days 1-2 -> 2; HFNC days 1-2 -> 9 - 2 = 7; oxygen,
        ICU and hospital cover days 1-10 -> 0.""",
        stays=[(D(0), D(9, 6))], adt=[(0, "icu", D(0), D(9, 6))],
        resp=every("High Flow NC", D(0), D(2), 6) + every("IMV", D(2), D(9, 6), 6), death=D(9, 6),
        expected=_ep(0, 0, 9.25, 1, 1, 0, 0, 0, 0, 0, 6, 7, 10,
                     imv_free_days_28_alive=0, imv_free_days_28_days=2, hfno_free_days_28_days=7,
                     oxygen_free_days_28_days=0, icu_free_days_28_days=0, hospital_free_days_28_days=0),
    ),
    Timeline(
        "T17", "NIPPV then CPAP",
        """Admitted at the index; ICU [D0, D4), ward to D7. NIPPV every 6 h D0-D2, CPAP every 6 h D2-D4,
        NC every 12 h D4-D5, room air every 12 h D5-D7. Neither NIPPV nor CPAP is HFNO: HFNO-free 28.
        Oxygen days 1-5 -> 23. ICU days 1-4 -> 24. Hospital days 1-7 -> 21. WHO day 1: NIV = 6;
        day 7: room air in hospital = 4; day 28: 3.""",
        stays=[(D(0), D(7))], adt=[(0, "icu", D(0), D(4)), (0, "ward", D(4), D(7))],
        resp=(every("NIPPV", D(0), D(2), 6) + every("CPAP", D(2), D(4), 6) + every("Nasal Cannula", D(4), D(5), 12)
              + every("Room Air", D(5), D(7), 12)),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 23, 24, 21, 6, 4, 3),
    ),
    Timeline(
        "T18", "trach collar and 'Other' devices count as oxygen; index late in the stay",
        """Admitted D-20; ICU [D-20, D-5), ward to D30. IMV every 6 h D-20 to D-5 (over before the
        index), trach collar every 12 h D-5-D10, "Other" every 12 h D10-D12, room air every 12 h
        D12-D30. No IMV at or after the index: IMV-free 28, need_imv 0. Oxygen [D-5, D12): days 1-12
        -> 16. ICU over before the index: 28. In hospital all 28 days: hospital-free 0. WHO day 1 and 7:
        trach collar = 5; day 28 [D27, D28): room air in hospital = 4.""",
        stays=[(D(-20), D(30))], adt=[(0, "icu", D(-20), D(-5)), (0, "ward", D(-5), D(30))],
        resp=(every("IMV", D(-20), D(-5), 6) + every("Trach Collar", D(-5), D(10), 12) + every("Other", D(10), D(12), 12)
              + every("Room Air", D(12), D(30), 12)),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 16, 28, 0, 5, 5, 4),
    ),
    Timeline(
        "T19", "records at the same instant",
        """Admitted at the index, ward, home at D8. HFNC every 6 h D0-D2. At D2 two records, IMV and room
        air: IMV sorts first, so it ends at the room-air record of the same instant and never holds;
        room air at D2 12:00, D3, D3 12:00. At D4 two records, CPAP and HFNC: CPAP never holds, HFNC
        holds to the room-air record at D4 12:00; room air every 12 h D4 12:00-D8. IMV-free 28,
        need_imv 0. HFNC [D0, D2) days 1-2 and [D4, D4 12:00) day 5 -> HFNO-free 25, oxygen-free 25.
        Hospital days 1-8 -> 20. WHO day 1: 6; day 7: 4; day 28: 3.""",
        stays=[(D(0), D(8))], adt=[(0, "ward", D(0), D(8))],
        resp=(every("High Flow NC", D(0), D(2), 6) + [(0, D(2), "IMV"), (0, D(2), "Room Air")]
              + every("Room Air", D(2, 12), D(4), 12) + [(0, D(4), "CPAP"), (0, D(4), "High Flow NC")]
              + every("Room Air", D(4, 12), D(8), 12)),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 25, 25, 28, 20, 6, 4, 3),
    ),
    Timeline(
        "T20", "on IMV at the index, extubated 2 h later",
        """Admitted D-2; ICU [D-2, D6), ward to D9. IMV every 6 h D-2 to D0 02:00 (records to D0 00:00),
        HFNC every 6 h from D0 02:00 to D3, NC every 12 h D3-D6, room air every 12 h D6-D9. The D0
        record holds [D0, D0 02:00): on IMV at the index -> need_imv missing; IMV touches day 1 only
        -> IMV-free 27. HFNO [D0 02:00, D3) days 1-3 -> 25. Oxygen days 1-6 -> 22. ICU days 1-6 ->
        22. Hospital days 1-9 -> 19. WHO day 1: IMV during the day = 7; day 7: 4; day 28: 3.""",
        stays=[(D(-2), D(9))], adt=[(0, "icu", D(-2), D(6)), (0, "ward", D(6), D(9))],
        resp=(every("IMV", D(-2), D(0, 2), 6) + every("High Flow NC", D(0, 2), D(3), 6)
              + every("Nasal Cannula", D(3), D(6), 12) + every("Room Air", D(6), D(9), 12)),
        expected=_ep(1, 1, 60.0, 0, NAN, 27, 25, 22, 22, 19, 7, 4, 3),
    ),
    Timeline(
        "T21", "a record held only to discharge, and a record after discharge",
        """Admitted at the index, ward, discharged at D5 04:00. NC every 12 h D0 to D5 (last record at
        D5 00:00) holds to discharge, not 24 h: oxygen [D0, D5 04:00) touches days 1-6 -> 22. An IMV
        record at D5 06:00, after discharge, never holds: IMV-free 28, need_imv 0. Hospital
        [D0, D5 04:00) days 1-6 -> 22. WHO day 1: 5; day 7: 3; day 28: 3.""",
        stays=[(D(0), D(5, 4))], adt=[(0, "ward", D(0), D(5, 4))],
        resp=every("Nasal Cannula", D(0), D(5, 1), 12) + [(0, D(5, 6), "IMV")],
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 22, 28, 22, 5, 3, 3),
    ),
    Timeline(
        "T22", "death after day 28, before day 60 (after discharge)",
        """As T01 but home at D12 and dead at D45 12:00. Alive at 28, dead at 60; time 45.5; event.
        Hospital days 1-12 -> 16; others 28. WHO 4, 4, 3.""",
        **_room_air_ward(12), death=D(45, 12),
        expected=_ep(1, 0, 45.5, 1, 0, 28, 28, 28, 28, 16, 4, 4, 3),
    ),
    Timeline(
        "T23", "death after day 60",
        """As T22 but dead at D75. Alive at 28 and 60; time censored at the horizon: 60.0; no event.""",
        **_room_air_ward(12), death=D(75),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 28, 28, 16, 4, 4, 3),
    ),
    Timeline(
        "T24", "no respiratory records at all",
        """Admitted at the index, ward, home at D5; no respiratory_support rows. Every support-free days
        28; hospital days 1-5 -> 23; need_imv 0. WHO day 1: in hospital without oxygen = 4; day 7: 3;
        day 28: 3.""",
        stays=[(D(0), D(5))], adt=[(0, "ward", D(0), D(5))], resp=[],
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 28, 28, 23, 4, 3, 3),
    ),
    Timeline(
        "T25", "two ICU episodes in one stay",
        """Admitted at the index, home at D10. ICU [D0, D2), ward [D2, D4 12:00), ICU [D4 12:00, D6),
        ward to D10; room air every 12 h. ICU days 1, 2, 5, 6 -> 24. Hospital days 1-10 -> 18.
        WHO 4, 4, 3.""",
        stays=[(D(0), D(10))],
        adt=[(0, "icu", D(0), D(2)), (0, "ward", D(2), D(4, 12)), (0, "icu", D(4, 12), D(6)), (0, "ward", D(6), D(10))],
        resp=every("Room Air", D(0), D(10), 12),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 28, 24, 18, 4, 4, 3),
    ),
    Timeline(
        "T26", "ICU only before the index",
        """Admitted D-10; ICU [D-10, D-1), ward to discharge at D2; room air every 12 h. The ICU stay
        ends before the index: ICU-free 28. Hospital [D-10, D2) days 1-2 -> 26. WHO 4, 3, 3.""",
        stays=[(D(-10), D(2))], adt=[(0, "icu", D(-10), D(-1)), (0, "ward", D(-1), D(2))],
        resp=every("Room Air", D(-10), D(2), 12),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 28, 28, 26, 4, 3, 3),
    ),
    Timeline(
        "T27", "IMV to day 20, then trach collar, still in hospital at day 28",
        """Admitted D-3; ICU [D-3, D25), ward to D40. IMV every 6 h D-3-D20, trach collar every 12 h
        D20-D40. IMV days 1-20 -> 8; need_imv missing (IMV at the index). Oxygen every day -> 0. ICU
        days 1-25 -> 3. Hospital -> 0. HFNO 28. WHO day 1 and 7: 7; day 28: trach collar = 5.""",
        stays=[(D(-3), D(40))], adt=[(0, "icu", D(-3), D(25)), (0, "ward", D(25), D(40))],
        resp=every("IMV", D(-3), D(20), 6) + every("Trach Collar", D(20), D(40), 12),
        expected=_ep(1, 1, 60.0, 0, NAN, 8, 28, 0, 3, 0, 7, 7, 5),
    ),
    Timeline(
        "T28", "IMV exactly on day boundaries",
        """Admitted at the index; ICU [D0, D6), ward to D8. NC every 12 h D0-D3, IMV every 6 h D3-D4,
        NC every 12 h D4-D8. IMV [D3, D4) is exactly day 4 -> IMV-free 27; need_imv 1. Oxygen days 1-8
        -> 20. ICU days 1-6 -> 22. Hospital days 1-8 -> 20. WHO day 1: 5; day 7: NC = 5; day 28: 3.""",
        stays=[(D(0), D(8))], adt=[(0, "icu", D(0), D(6)), (0, "ward", D(6), D(8))],
        resp=every("Nasal Cannula", D(0), D(3), 12) + every("IMV", D(3), D(4), 6) + every("Nasal Cannula", D(4), D(8), 12),
        expected=_ep(1, 1, 60.0, 0, 1, 27, 28, 20, 22, 20, 5, 5, 3),
    ),
    Timeline(
        "T29", "Impella rows in ecmo_mcs are not ECMO",
        """Admitted at the index; ICU [D0, D5), ward to D7; room air every 12 h; ecmo_mcs "Impella"
        every 8 h D1-D3. Not ECMO: IMV-free 28, need_imv 0, WHO never 9. ICU days 1-5 -> 23. Hospital
        days 1-7 -> 21. WHO 4, 4, 3.""",
        stays=[(D(0), D(7))], adt=[(0, "icu", D(0), D(5)), (0, "ward", D(5), D(7))],
        resp=every("Room Air", D(0), D(7), 12), ecmo=every("Impella", D(1), D(3), 8),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 28, 23, 21, 4, 4, 3),
    ),
    Timeline(
        "T30", "support that ends exactly at the index",
        """Admitted D-3, ward, home at D5. HFNC every 6 h D-3 to D0 (last record D-1 18:00, held to the
        room-air record at D0); room air every 12 h D0-D5. HFNC ends at the index: it touches no day
        1..28 -> HFNO-free 28, oxygen-free 28. Hospital days 1-5 -> 23. WHO day 1: 4; 3; 3.""",
        stays=[(D(-3), D(5))], adt=[(0, "ward", D(-3), D(5))],
        resp=every("High Flow NC", D(-3), D(0), 6) + every("Room Air", D(0), D(5), 12),
        expected=_ep(1, 1, 60.0, 0, 0, 28, 28, 28, 28, 23, 4, 3, 3),
    ),
]

CUTOFF = "2021-01-01"

STUDY = f"""
[study]
name = "hand-computed timelines"
[data]
source = "data"
cutoff = {CUTOFF}
[index]
product = "MSC"
[index.pool]
location = "icu"
[features]
[[features.covariates]]
name = "age"
kind = "age"
[matching]
covariates = ["age"]
[outcomes]
survival_days = [28, 60]
need_imv = true
free_days = ["imv", "hfno", "oxygen", "icu", "hospital"]
free_days_horizon = 28
free_days_death_value = {{death_value}}
max_gap_hours = 24
who_scale_days = [1, 7, 28]
[[outcomes.labs]]
category = "d_dimer"
day = 7
window_days = 1
unit = "ug/L"
"""


def index_time(i: int) -> pd.Timestamp:
    return BASE + pd.Timedelta(days=5 * i)


def tables() -> dict[str, pd.DataFrame]:
    """CLIF tables holding every timeline (patient P<id>, stays H<id>_<k>), plus the index frame."""
    patient, hosp, adt, resp, ecmo, labs, index = [], [], [], [], [], [], []
    for i, tl in enumerate(TIMELINES):
        t0 = index_time(i)
        pid = "P" + tl.id
        hid = [f"H{tl.id}_{k}" for k in range(len(tl.stays))]
        patient.append({"patient_id": pid, "sex_category": "Female", "birth_date": pd.Timestamp("1960-01-01").date(),
                        "death_dttm": t0 + tl.death if tl.death is not None else pd.NaT})
        for k, (a, b) in enumerate(tl.stays):
            hosp.append({"patient_id": pid, "hospitalization_id": hid[k], "admission_dttm": t0 + a,
                         "discharge_dttm": t0 + b})
        adt += [{"hospitalization_id": hid[k], "location_category": loc, "in_dttm": t0 + a, "out_dttm": t0 + b}
                for k, loc, a, b in tl.adt]
        resp += [{"hospitalization_id": hid[k], "recorded_dttm": t0 + t, "device_category": dev} for k, t, dev in tl.resp]
        ecmo += [{"hospitalization_id": hid[k], "recorded_dttm": t0 + t, "device_category": dev,
                  "mcs_group": "ECMO" if "ECMO" in dev else "temporary LVAD"} for k, t, dev in tl.ecmo]
        labs += [{"hospitalization_id": hid[k], "lab_collect_dttm": t0 + t, "lab_category": "d_dimer",
                  "lab_value_numeric": v, "reference_unit": u} for k, t, v, u in tl.labs]
        index.append({"patient_id": pid, "hospitalization_id": hid[0], "index_time": t0})

    def frame(rows, cols):
        return pd.DataFrame(rows, columns=cols)

    ts = "datetime64[ns, UTC]"
    out = {
        "patient": frame(patient, ["patient_id", "sex_category", "birth_date", "death_dttm"]),
        "hospitalization": frame(hosp, ["patient_id", "hospitalization_id", "admission_dttm", "discharge_dttm"]),
        "adt": frame(adt, ["hospitalization_id", "location_category", "in_dttm", "out_dttm"]),
        "respiratory_support": frame(resp, ["hospitalization_id", "recorded_dttm", "device_category"]),
        "ecmo_mcs": frame(ecmo, ["hospitalization_id", "recorded_dttm", "device_category", "mcs_group"]),
        "labs": frame(labs, ["hospitalization_id", "lab_collect_dttm", "lab_category", "lab_value_numeric",
                             "reference_unit"]),
        "index": frame(index, ["patient_id", "hospitalization_id", "index_time"]),
    }
    out["patient"]["death_dttm"] = pd.to_datetime(out["patient"]["death_dttm"], utc=True)
    out["ecmo_mcs"]["recorded_dttm"] = out["ecmo_mcs"]["recorded_dttm"].astype(ts)
    out["labs"]["lab_value_numeric"] = out["labs"]["lab_value_numeric"].astype(float)
    return out


def write(folder: Path, death_value: int = 0) -> Path:
    """Write the tables as Parquet and the study file; return the study file's path."""
    data = Path(folder) / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, df in tables().items():
        if name != "index":
            df.to_parquet(data / f"{name}.parquet", index=False)
    path = Path(folder) / "study.toml"
    path.write_text(STUDY.replace("{death_value}", str(death_value)))
    return path


def expected_frame(death_value: int = 0) -> pd.DataFrame:
    """Expected endpoints, one row per timeline (patient_id P<id>); NaN where not given."""
    rows = []
    for tl in TIMELINES:
        e = dict(tl.expected)
        dead28 = e["alive_d28"] == 0
        if dead28 and death_value != 0:
            for k in list(e):
                if k.endswith("_free_days_28"):
                    e[k] = death_value
        rows.append({"patient_id": "P" + tl.id, **e})
    return pd.DataFrame(rows).set_index("patient_id").astype(float)


assert len({t.id for t in TIMELINES}) == len(TIMELINES) >= 25
assert all(np.isfinite(t.expected["alive_d28"]) for t in TIMELINES)
