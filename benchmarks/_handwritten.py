"""Hand-written DuckDB queries for the benchmark's endpoints, the yardstick controlarm is measured against.

Written directly in DuckDB's dialect (``epoch_us``, ``QUALIFY``, ``range``) for one fixed
study: alive at day 28 and 60, time to death to day 60, need for IMV or ECMO to day 60, IMV-, HFNO-,
oxygen- and ICU-free days to day 28 (death = 0), D-dimer nearest day 7 within ±1 day (ties: earlier,
then larger), a respiratory record holding until the next one, at most 24 h, never past discharge,
readmissions included, vital status known to the cutoff 2022-06-01. Both read the relations
``bench_index`` (patient_id, hospitalization_id, index_time) and the canonical views of
``controlarm.sources``, and return one row per patient ordered by patient_id.

Tuned as an expert would for this one study: times are integer microseconds from each patient's
index (``epoch_us``: DuckDB's interval and ``date_diff`` arithmetic on TIMESTAMPTZ is many times
slower); the holding window partitions by an integer hospitalization key and breaks ties on an
integer device rank (strings in a sort key doubled its cost); records outside [index - 24 h,
day 60) are dropped before it. ``/`` on integers is DuckDB's float
division, so ``floor(s / 86400000000)`` is the floor day.

* ``BITMASK``: per-patient day bitmasks (``bit_or``/``bit_count``), the fastest shape measured in
  shared/notes/engines.md;
* ``GROUP_BY``: days expanded with ``unnest(range(...))``, grouped by patient and day, then by
  patient: the shape of the ~33 s reference query of issue 4.
"""

_COMMON = """
WITH ix AS (SELECT patient_id, epoch_us(index_time) AS t0 FROM bench_index),
hs AS (
    SELECT ix.patient_id, ix.t0, h.hospitalization_id, epoch_us(h.discharge_dttm) - ix.t0 AS dis,
           row_number() OVER (ORDER BY h.hospitalization_id) AS hk
    FROM ix JOIN hospitalization h ON h.patient_id = ix.patient_id
),
resp AS (
    SELECT patient_id, device_category, s,
           least(coalesce(lead(s) OVER w, dis), s + 86400000000, dis) AS e
    FROM (SELECT hs.patient_id, hs.hk, hs.dis, r.device_category,
                 epoch_us(r.recorded_dttm) - hs.t0 AS s,
                 CASE r.device_category WHEN 'CPAP' THEN 0 WHEN 'Face Mask' THEN 1 WHEN 'High Flow NC' THEN 2
                      WHEN 'IMV' THEN 3 WHEN 'NIPPV' THEN 4 WHEN 'Nasal Cannula' THEN 5 WHEN 'Other' THEN 6
                      WHEN 'Room Air' THEN 7 WHEN 'Trach Collar' THEN 8 ELSE 9 END AS dr
          FROM hs JOIN respiratory_support r ON r.hospitalization_id = hs.hospitalization_id)
    WHERE s >= -86400000000 AND s < 60 * 86400000000
    WINDOW w AS (PARTITION BY hk ORDER BY s, dr)
),
ecmo AS (
    SELECT patient_id, s, least(coalesce(lead(s) OVER w, dis), s + 86400000000, dis) AS e
    FROM (SELECT hs.patient_id, hs.hk, hs.dis, epoch_us(m.recorded_dttm) - hs.t0 AS s
          FROM hs JOIN ecmo_mcs m ON m.hospitalization_id = hs.hospitalization_id
          WHERE upper(m.device_category) LIKE '%ECMO%')
    WHERE s >= -86400000000 AND s < 60 * 86400000000
    WINDOW w AS (PARTITION BY hk ORDER BY s)
),
spans AS (
    SELECT patient_id, s, e, device_category = 'IMV' AS imv,
           device_category = 'High Flow NC' AS hfno, device_category <> 'Room Air' AS o2, false AS icu
    FROM resp
    UNION ALL SELECT patient_id, s, e, true, false, true, false FROM ecmo
    UNION ALL
    SELECT hs.patient_id, epoch_us(a.in_dttm) - hs.t0, epoch_us(a.out_dttm) - hs.t0, false, false, false, true
    FROM hs JOIN adt a ON a.hospitalization_id = hs.hospitalization_id WHERE a.location_category = 'icu'
),
days AS (
    SELECT patient_id, imv, hfno, o2, icu,
           imv AND s <= 0 AS imv_at0,
           imv AND s < 60 * 86400000000 AS imv_to60,
           greatest(0, CAST(floor(s / 86400000000) AS BIGINT)) AS d0,
           least(27, CAST(floor((e - 1) / 86400000000) AS BIGINT)) AS d1
    FROM spans WHERE e > s AND e > 0
),
"""

_TAIL = """
dimer AS (
    SELECT patient_id, value FROM (
        SELECT hs.patient_id, l.value_harmonised AS value,
               epoch_us(l.lab_collect_dttm) - hs.t0 - 7 * 86400000000 AS dt
        FROM hs JOIN labs l ON l.hospitalization_id = hs.hospitalization_id
        WHERE l.lab_category = 'd_dimer' AND l.value_harmonised IS NOT NULL)
    WHERE abs(dt) <= 86400000000
    QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY abs(dt), dt, value DESC) = 1
),
vs AS (
    SELECT ix.patient_id, epoch_us(p.death_dttm) - ix.t0 AS death,
           coalesce(epoch_us(p.death_dttm), epoch_us(TIMESTAMPTZ '2022-06-01 00:00:00+00')) - ix.t0 AS known
    FROM ix JOIN patient p ON p.patient_id = ix.patient_id
)
SELECT vs.patient_id,
       CASE WHEN death <= 28 * 86400000000 THEN 0 WHEN known >= 28 * 86400000000 THEN 1 END AS alive_d28,
       CASE WHEN death <= 60 * 86400000000 THEN 0 WHEN known >= 60 * 86400000000 THEN 1 END AS alive_d60,
       least(known, 60 * 86400000000) / 86400000000 AS death_time_days,
       CASE WHEN death <= 60 * 86400000000 THEN 1 ELSE 0 END AS death_event,
       CASE WHEN f.imv_at0 THEN NULL WHEN f.imv_to60 THEN 1 ELSE 0 END AS need_imv,
       CASE WHEN death <= 28 * 86400000000 THEN 0 ELSE 28 - coalesce(f.n_imv, 0) END AS imv_free_days_28,
       CASE WHEN death <= 28 * 86400000000 THEN 0 ELSE 28 - coalesce(f.n_hfno, 0) END AS hfno_free_days_28,
       CASE WHEN death <= 28 * 86400000000 THEN 0 ELSE 28 - coalesce(f.n_o2, 0) END AS oxygen_free_days_28,
       CASE WHEN death <= 28 * 86400000000 THEN 0 ELSE 28 - coalesce(f.n_icu, 0) END AS icu_free_days_28,
       dimer.value AS d_dimer_d7
FROM vs LEFT JOIN f ON f.patient_id = vs.patient_id
LEFT JOIN dimer ON dimer.patient_id = vs.patient_id
ORDER BY vs.patient_id
"""

BITMASK = _COMMON + """
f AS (
    SELECT patient_id,
           bit_count(bit_or(CASE WHEN imv AND d0 <= d1 THEN (CAST(1 AS BIGINT) << (d1 + 1)) - (CAST(1 AS BIGINT) << d0) END)) AS n_imv,
           bit_count(bit_or(CASE WHEN hfno AND d0 <= d1 THEN (CAST(1 AS BIGINT) << (d1 + 1)) - (CAST(1 AS BIGINT) << d0) END)) AS n_hfno,
           bit_count(bit_or(CASE WHEN o2 AND d0 <= d1 THEN (CAST(1 AS BIGINT) << (d1 + 1)) - (CAST(1 AS BIGINT) << d0) END)) AS n_o2,
           bit_count(bit_or(CASE WHEN icu AND d0 <= d1 THEN (CAST(1 AS BIGINT) << (d1 + 1)) - (CAST(1 AS BIGINT) << d0) END)) AS n_icu,
           bool_or(imv_at0) AS imv_at0, bool_or(imv_to60) AS imv_to60
    FROM days GROUP BY patient_id
),
""" + _TAIL

GROUP_BY = _COMMON + """
flags AS (
    SELECT patient_id, bool_or(imv_at0) AS imv_at0, bool_or(imv_to60) AS imv_to60 FROM days GROUP BY patient_id
),
per_day AS (
    SELECT patient_id, day, bool_or(imv) AS imv, bool_or(hfno) AS hfno, bool_or(o2) AS o2, bool_or(icu) AS icu
    FROM (SELECT patient_id, imv, hfno, o2, icu, unnest(range(d0, d1 + 1)) AS day FROM days WHERE d1 >= d0) x
    GROUP BY patient_id, day
),
counts AS (
    SELECT patient_id, count(*) FILTER (WHERE imv) AS n_imv, count(*) FILTER (WHERE hfno) AS n_hfno,
           count(*) FILTER (WHERE o2) AS n_o2, count(*) FILTER (WHERE icu) AS n_icu
    FROM per_day GROUP BY patient_id
),
f AS (
    SELECT flags.patient_id, flags.imv_at0, flags.imv_to60, n_imv, n_hfno, n_o2, n_icu
    FROM flags LEFT JOIN counts ON counts.patient_id = flags.patient_id
),
""" + _TAIL

QUERIES = {"hand-written bitmask": BITMASK, "hand-written group-by": GROUP_BY}
