-- name: latency_quantile_stats
-- description: Per arm, the sufficient statistics of a user-clustered latency quantile over a window
--   (expkit.stats.guardrails.quantile_arm, gbstats' QuantileClusteredStatistic) from the per-user
--   latency histograms of the window's days (a view "user_latency" of user_latency_hist rows). A user
--   seen on several days is one unit, in the arm of their first request in the window. With N the
--   arm's events, the value of continuous rank h = p N is read in the bucket holding it, log-linearly
--   between the bucket's bounds (bucket i spans (gamma^(i-1), gamma^i], ln gamma = ln_gamma):
--   exp(ln_gamma (i - 1 + (h - events of lower buckets) / events of bucket i)). quantile is at
--   p = nu, quantile_lower and quantile_upper at p = nu -/+ z sqrt(nu (1 - nu) / N) (the i.i.d.
--   order-statistic bounds). Per user, below = events of the buckets under the quantile's bucket plus
--   the share (h - events of lower buckets) / events of its bucket of their events in it (so that
--   the arm's below sums to nu N), events = all their events; the row has n users and the five sums of
--   the delta method of below / events.
-- params: experiment_id: str, nu: float, z: float, ln_gamma: float
-- reads: user_latency
-- grain: bucket
WITH per_user_idx AS (
    SELECT user_id, idx, sum(n) AS n
    FROM user_latency
    WHERE experiment_id = $experiment_id
    GROUP BY user_id, idx
),
arms AS (
    SELECT user_id, arg_min(bucket, first_ms) AS bucket
    FROM user_latency
    WHERE experiment_id = $experiment_id
    GROUP BY user_id
),
arm_hist AS (
    SELECT a.bucket, p.idx, CAST(sum(p.n) AS DOUBLE) AS n
    FROM per_user_idx AS p
    JOIN arms AS a ON a.user_id = p.user_id
    GROUP BY a.bucket, p.idx
),
cum AS (
    SELECT
        bucket, idx, n,
        -- idx is never NULL; NULLS FIRST spelled out so the window translates to every dialect
        sum(n) OVER (PARTITION BY bucket ORDER BY idx NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS cum_n,
        sum(n) OVER (PARTITION BY bucket) AS total
    FROM arm_hist
),
-- the three ranks of each arm: the quantile and its order-statistic bounds
ranks AS (
    SELECT t.bucket, t.total, k.which,
        CASE k.which
            WHEN 'q' THEN $nu * t.total
            WHEN 'lower' THEN greatest($nu - $z * sqrt($nu * (1 - $nu) / t.total), 0) * t.total
            ELSE least($nu + $z * sqrt($nu * (1 - $nu) / t.total), 1) * t.total
        END AS h
    FROM (SELECT DISTINCT bucket, total FROM cum) AS t
    CROSS JOIN (VALUES ('q'), ('lower'), ('upper')) AS k (which)
),
-- the bucket holding each rank (the first whose cumulative count reaches it)
hit AS (
    SELECT r.bucket, r.which, r.h, min(c.idx) AS idx
    FROM ranks AS r
    JOIN cum AS c ON c.bucket = r.bucket AND c.cum_n >= r.h
    GROUP BY r.bucket, r.which, r.h
),
pos AS (
    SELECT h.bucket, h.which, h.idx, (h.h - (c.cum_n - c.n)) / c.n AS frac
    FROM hit AS h
    JOIN cum AS c ON c.bucket = h.bucket AND c.idx = h.idx
),
q AS (
    SELECT
        bucket,
        max(CASE WHEN which = 'q' THEN idx END) AS idx_q,
        max(CASE WHEN which = 'q' THEN frac END) AS frac_q,
        max(CASE WHEN which = 'q' THEN exp($ln_gamma * (idx - 1 + frac)) END) AS quantile,
        max(CASE WHEN which = 'lower' THEN exp($ln_gamma * (idx - 1 + frac)) END) AS quantile_lower,
        max(CASE WHEN which = 'upper' THEN exp($ln_gamma * (idx - 1 + frac)) END) AS quantile_upper
    FROM pos
    GROUP BY bucket
),
users AS (
    SELECT
        a.bucket, p.user_id,
        CAST(sum(p.n) AS DOUBLE) AS events,
        sum(CASE WHEN p.idx < q.idx_q THEN p.n WHEN p.idx = q.idx_q THEN q.frac_q * p.n ELSE 0 END) AS below
    FROM per_user_idx AS p
    JOIN arms AS a ON a.user_id = p.user_id
    JOIN q ON q.bucket = a.bucket
    GROUP BY a.bucket, p.user_id
)
SELECT
    u.bucket, sum(u.events) AS n_events, CAST(count(*) AS DOUBLE) AS n,
    max(q.quantile) AS quantile, max(q.quantile_lower) AS quantile_lower, max(q.quantile_upper) AS quantile_upper,
    sum(u.below) AS sum_below, sum(u.below * u.below) AS sum_below2,
    sum(u.events) AS sum_events, sum(u.events * u.events) AS sum_events2,
    sum(u.below * u.events) AS sum_below_events
FROM users AS u
JOIN q ON q.bucket = u.bucket
GROUP BY u.bucket
ORDER BY u.bucket
