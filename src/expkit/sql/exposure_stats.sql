-- name: exposure_stats
-- description: Sufficient statistics of every outcome ratio metric per arm and exposure age (days since
--   the user's first exposure) over the experiment to date, for the lift by exposure age and its trend
--   (docs/statistics.md, "Novelty and primacy"). Reads each user's numerator and denominator per age
--   bucket over the experiment to date (a view "ages": the day's exposure_ages, template exposure_ages).
--   Per arm and pair of age buckets (age <= age2): n users present at both, sum_num, sum_den (of age,
--   over those users) and the cross sums
--   sum_nn = Σ num(age)·num(age2), sum_nd = Σ num(age)·den(age2), sum_dn = Σ den(age)·num(age2),
--   sum_dd = Σ den(age)·den(age2). The rows age = age2 are the per-age sums of the delta method
--   (sum_nn = Σnum², sum_dd = Σden², sum_nd = Σnum·den); the others give the covariance of the
--   per-age lifts of a user seen at several ages (the user-clustered trend test). Recall@K is not a
--   per-day sum (it needs the window's per (user, item) facts) and is left out.
--   One row set per metric: expkit.metrics_sql writes the marked regions metric_moments, metric_values
--   and metric_pick from the catalogue.
-- params: (none)
-- reads: ages
-- grain: experiment_id, metric, bucket, age, age2
WITH pairs AS (
    SELECT
        a.experiment_id, a.bucket, a.age, b.age AS age2, count(*) AS n
        /*metric_moments:begin*/,
        sum(a.clicks) AS num_0, sum(a.impressions) AS den_0, sum(a.clicks * b.clicks) AS nn_0, sum(a.clicks * b.impressions) AS nd_0, sum(a.impressions * b.clicks) AS dn_0, sum(a.impressions * b.impressions) AS dd_0,
        sum(a.saves) AS num_1, sum(a.impressions) AS den_1, sum(a.saves * b.saves) AS nn_1, sum(a.saves * b.impressions) AS nd_1, sum(a.impressions * b.saves) AS dn_1, sum(a.impressions * b.impressions) AS dd_1,
        sum(a.saves) AS num_2, sum(a.clicks) AS den_2, sum(a.saves * b.saves) AS nn_2, sum(a.saves * b.clicks) AS nd_2, sum(a.clicks * b.saves) AS dn_2, sum(a.clicks * b.clicks) AS dd_2,
        sum(a.depth) AS num_3, sum(a.sessions) AS den_3, sum(a.depth * b.depth) AS nn_3, sum(a.depth * b.sessions) AS nd_3, sum(a.sessions * b.depth) AS dn_3, sum(a.sessions * b.sessions) AS dd_3/*metric_moments:end*/
    FROM ages AS a
    JOIN ages AS b ON b.experiment_id = a.experiment_id AND b.user_id = a.user_id AND b.age >= a.age
    GROUP BY a.experiment_id, a.bucket, a.age, b.age
),
metrics AS (
    SELECT * FROM (VALUES /*metric_values:begin*/('ctr', 0), ('save_rate', 1), ('saves_per_click', 2), ('session_depth', 3)/*metric_values:end*/) AS m (metric, k)
)
SELECT
    p.experiment_id, m.metric, p.bucket, p.age, p.age2, p.n
    /*metric_pick:begin*/,
    CASE m.k WHEN 0 THEN p.num_0 WHEN 1 THEN p.num_1 WHEN 2 THEN p.num_2 WHEN 3 THEN p.num_3 END AS sum_num,
    CASE m.k WHEN 0 THEN p.den_0 WHEN 1 THEN p.den_1 WHEN 2 THEN p.den_2 WHEN 3 THEN p.den_3 END AS sum_den,
    CASE m.k WHEN 0 THEN p.nn_0 WHEN 1 THEN p.nn_1 WHEN 2 THEN p.nn_2 WHEN 3 THEN p.nn_3 END AS sum_nn,
    CASE m.k WHEN 0 THEN p.nd_0 WHEN 1 THEN p.nd_1 WHEN 2 THEN p.nd_2 WHEN 3 THEN p.nd_3 END AS sum_nd,
    CASE m.k WHEN 0 THEN p.dn_0 WHEN 1 THEN p.dn_1 WHEN 2 THEN p.dn_2 WHEN 3 THEN p.dn_3 END AS sum_dn,
    CASE m.k WHEN 0 THEN p.dd_0 WHEN 1 THEN p.dd_1 WHEN 2 THEN p.dd_2 WHEN 3 THEN p.dd_3 END AS sum_dd/*metric_pick:end*/
FROM pairs AS p CROSS JOIN metrics AS m
