-- name: ratio_stats
-- description: Sufficient statistics of every outcome ratio metric per arm and slice over a
--   window: n users, sum_num, sum_den, sum_num2, sum_den2, sum_numden of the per-user sums
--   (what expkit.stats needs for the delta method). Reads per-user facts (a view "user_facts" of the
--   window's days); a user seen on several days is one unit. A user's bucket and attributes are
--   those of their first exposure in the window. Recall@K is taken over the whole window (plays =
--   distinct items played in the window, hits = those shown at position <= K before their first play in
--   the window; docs/metrics.md, "Outcome metrics") from the played pairs of its days (a view
--   "played_items", template played_items) and the window's first instant $window_start_ms (a day
--   boundary; the last hour's start for 1h).
--   CUPED: a view "user_pre" (template user_pre) holds each user's pre-period numerator and denominator
--   per metric (pre_<id>_num, pre_<id>_den; a user without pre-period history has 0); every row set adds
--   the nine sums of the regression adjustment (sum_pre_num, sum_pre_den, sum_pre_num2, sum_pre_den2,
--   sum_pre_numden, sum_num_pre_num, sum_num_pre_den, sum_den_pre_num, sum_den_pre_den). The covariate
--   of an impression-attribute slice is the user's whole pre-period value (measured before exposure).
--   One row set per ratio metric of the catalogue (params/metrics.yaml): expkit.metrics_sql writes
--   the marked regions metric_sums, metric_columns, metric_all_values, metric_slice_values, metric_moments,
--   metric_values and metric_pick from it (built-in ones: ctr = clicks/impressions, save_rate =
--   saves/impressions, saves_per_click = saves/clicks, recall = hits/plays, session_depth =
--   depth/sessions; declarative ones: their m_<id>_num / m_<id>_den facts). Metrics not defined per
--   impression attribute (recall, session_depth, any metric reading requests or plays) exist for
--   the user-level slices (all, cohort, region, client) only.
--   Capping (a metric's cap in the catalogue; docs/metrics.md, "Capping per-user values"): the regions
--   metric_caps (a CTE "caps": per experiment, the threshold cap_<k> of each capped metric, the
--   quantile $cap_<k> of the window's non-zero per-user numerators of the users of both arms,
--   slice = 'all', before any attribute filter; or the fixed value $cap_<k>) and metric_cap_join (its
--   join in "sums") are empty without caps; with them, a capped metric's per-user numerator is
--   min(value, cap_<k>) in every sum (the CUPED cross sums included; the pre-period covariate is not
--   capped), in every slice, and its rows add cap_value (the threshold) and capped_users (users of
--   the row whose value was above it; NULL for uncapped metrics).
--   Optional filters (expkit.templates.Template.render): on the user's attributes (the users kept), and
--   on the metric, slice and experiment of the rows (the readers ask for one; the rollup for all).
--   Besides window_start_ms, the optional filter values bind, and each capped metric's cap_<k> (expkit.metrics_sql).
-- params: window_start_ms: int
-- reads: user_facts, played_items, user_pre
-- grain: experiment_id, metric, bucket, slice, slice_value
-- filters: attr_filter: a.cohort, a.region, a.client; row_filter: m.metric, s.slice, s.experiment_id
WITH attrs AS (
    SELECT
        experiment_id, user_id,
        arg_min(bucket, first_ms) AS bucket,
        arg_min(cohort, first_ms) AS cohort,
        arg_min(region, first_ms) AS region,
        arg_min(client, first_ms) AS client
    FROM user_facts
    WHERE slice = 'all'
    GROUP BY experiment_id, user_id
),
-- a user's rows of the window's days; attributes (one row per user) are joined afterwards
facts AS (
    SELECT
        experiment_id, user_id, slice, slice_value,
        sum(impressions) AS impressions, sum(clicks) AS clicks, sum(saves) AS saves,
        sum(sessions) AS sessions, sum(depth) AS depth
        /*metric_sums:begin*//*metric_sums:end*/
    FROM user_facts
    GROUP BY experiment_id, user_id, slice, slice_value
),
per_user AS (
    SELECT
        f.experiment_id, a.bucket, f.user_id, f.slice, f.slice_value, a.cohort, a.region, a.client,
        f.impressions, f.clicks, f.saves, f.sessions, f.depth
        /*metric_columns:begin*/, coalesce(pp.pre_ctr_num, 0.0) AS pre_ctr_num , coalesce(pp.pre_ctr_den, 0.0) AS pre_ctr_den , coalesce(pp.pre_save_rate_num, 0.0) AS pre_save_rate_num , coalesce(pp.pre_save_rate_den, 0.0) AS pre_save_rate_den , coalesce(pp.pre_saves_per_click_num, 0.0) AS pre_saves_per_click_num , coalesce(pp.pre_saves_per_click_den, 0.0) AS pre_saves_per_click_den , coalesce(pp.pre_recall_num, 0.0) AS pre_recall_num , coalesce(pp.pre_recall_den, 0.0) AS pre_recall_den , coalesce(pp.pre_session_depth_num, 0.0) AS pre_session_depth_num , coalesce(pp.pre_session_depth_den, 0.0) AS pre_session_depth_den/*metric_columns:end*/
    FROM facts AS f
    JOIN attrs AS a ON a.experiment_id = f.experiment_id AND a.user_id = f.user_id
    LEFT JOIN user_pre AS pp ON pp.user_id = f.user_id
    WHERE 1 = 1 /*attr_filter*/
),
/*metric_caps:begin*//*metric_caps:end*//*include:window_recall*/
user_slices AS (
    SELECT * FROM (VALUES ('all'), ('cohort'), ('region'), ('client')) AS s (slice)
),
expanded AS (
    SELECT
        p.experiment_id, p.bucket, s.slice,
        CASE s.slice WHEN 'cohort' THEN p.cohort WHEN 'region' THEN p.region
            WHEN 'client' THEN p.client ELSE 'all' END AS slice_value,
        CAST(p.impressions AS DOUBLE) AS impressions, CAST(p.clicks AS DOUBLE) AS clicks,
        CAST(p.saves AS DOUBLE) AS saves, CAST(p.sessions AS DOUBLE) AS sessions,
        CAST(p.depth AS DOUBLE) AS depth,
        CAST(coalesce(r.plays, 0) AS DOUBLE) AS plays, CAST(coalesce(r.hits, 0) AS DOUBLE) AS hits,
        1.0 AS users
        /*metric_all_values:begin*/, p.pre_ctr_num , p.pre_ctr_den , p.pre_save_rate_num , p.pre_save_rate_den , p.pre_saves_per_click_num , p.pre_saves_per_click_den , p.pre_recall_num , p.pre_recall_den , p.pre_session_depth_num , p.pre_session_depth_den/*metric_all_values:end*/
    FROM per_user AS p
    CROSS JOIN user_slices AS s
    LEFT JOIN recall AS r ON r.user_id = p.user_id
    WHERE p.slice = 'all'
    UNION ALL
    SELECT experiment_id, bucket, slice, slice_value,
        CAST(impressions AS DOUBLE), CAST(clicks AS DOUBLE), CAST(saves AS DOUBLE),
        CAST(sessions AS DOUBLE), CAST(depth AS DOUBLE), 0.0, 0.0, 1.0
        /*metric_slice_values:begin*/, pre_ctr_num , pre_ctr_den , pre_save_rate_num , pre_save_rate_den , pre_saves_per_click_num , pre_saves_per_click_den , pre_recall_num , pre_recall_den , pre_session_depth_num , pre_session_depth_den/*metric_slice_values:end*/
    FROM per_user
    WHERE slice <> 'all'
),
-- every metric's sums in one pass over the users, then one row per metric
sums AS (
    SELECT
        experiment_id, bucket, slice, slice_value,
        count(*) AS n
        /*metric_moments:begin*/,
        sum(clicks) AS num_0, sum(impressions) AS den_0, sum(clicks * clicks) AS num2_0, sum(impressions * impressions) AS den2_0, sum(clicks * impressions) AS numden_0,
        sum(pre_ctr_num) AS pre_num_0, sum(pre_ctr_den) AS pre_den_0, sum(pre_ctr_num * pre_ctr_num) AS pre_num2_0, sum(pre_ctr_den * pre_ctr_den) AS pre_den2_0, sum(pre_ctr_num * pre_ctr_den) AS pre_numden_0, sum(clicks * pre_ctr_num) AS num_pre_num_0, sum(clicks * pre_ctr_den) AS num_pre_den_0, sum(impressions * pre_ctr_num) AS den_pre_num_0, sum(impressions * pre_ctr_den) AS den_pre_den_0,
        sum(saves) AS num_1, sum(impressions) AS den_1, sum(saves * saves) AS num2_1, sum(impressions * impressions) AS den2_1, sum(saves * impressions) AS numden_1,
        sum(pre_save_rate_num) AS pre_num_1, sum(pre_save_rate_den) AS pre_den_1, sum(pre_save_rate_num * pre_save_rate_num) AS pre_num2_1, sum(pre_save_rate_den * pre_save_rate_den) AS pre_den2_1, sum(pre_save_rate_num * pre_save_rate_den) AS pre_numden_1, sum(saves * pre_save_rate_num) AS num_pre_num_1, sum(saves * pre_save_rate_den) AS num_pre_den_1, sum(impressions * pre_save_rate_num) AS den_pre_num_1, sum(impressions * pre_save_rate_den) AS den_pre_den_1,
        sum(saves) AS num_2, sum(clicks) AS den_2, sum(saves * saves) AS num2_2, sum(clicks * clicks) AS den2_2, sum(saves * clicks) AS numden_2,
        sum(pre_saves_per_click_num) AS pre_num_2, sum(pre_saves_per_click_den) AS pre_den_2, sum(pre_saves_per_click_num * pre_saves_per_click_num) AS pre_num2_2, sum(pre_saves_per_click_den * pre_saves_per_click_den) AS pre_den2_2, sum(pre_saves_per_click_num * pre_saves_per_click_den) AS pre_numden_2, sum(saves * pre_saves_per_click_num) AS num_pre_num_2, sum(saves * pre_saves_per_click_den) AS num_pre_den_2, sum(clicks * pre_saves_per_click_num) AS den_pre_num_2, sum(clicks * pre_saves_per_click_den) AS den_pre_den_2,
        sum(hits) AS num_3, sum(plays) AS den_3, sum(hits * hits) AS num2_3, sum(plays * plays) AS den2_3, sum(hits * plays) AS numden_3,
        sum(pre_recall_num) AS pre_num_3, sum(pre_recall_den) AS pre_den_3, sum(pre_recall_num * pre_recall_num) AS pre_num2_3, sum(pre_recall_den * pre_recall_den) AS pre_den2_3, sum(pre_recall_num * pre_recall_den) AS pre_numden_3, sum(hits * pre_recall_num) AS num_pre_num_3, sum(hits * pre_recall_den) AS num_pre_den_3, sum(plays * pre_recall_num) AS den_pre_num_3, sum(plays * pre_recall_den) AS den_pre_den_3,
        sum(depth) AS num_4, sum(sessions) AS den_4, sum(depth * depth) AS num2_4, sum(sessions * sessions) AS den2_4, sum(depth * sessions) AS numden_4,
        sum(pre_session_depth_num) AS pre_num_4, sum(pre_session_depth_den) AS pre_den_4, sum(pre_session_depth_num * pre_session_depth_num) AS pre_num2_4, sum(pre_session_depth_den * pre_session_depth_den) AS pre_den2_4, sum(pre_session_depth_num * pre_session_depth_den) AS pre_numden_4, sum(depth * pre_session_depth_num) AS num_pre_num_4, sum(depth * pre_session_depth_den) AS num_pre_den_4, sum(sessions * pre_session_depth_num) AS den_pre_num_4, sum(sessions * pre_session_depth_den) AS den_pre_den_4/*metric_moments:end*/
    FROM expanded/*metric_cap_join:begin*//*metric_cap_join:end*/
    GROUP BY experiment_id, bucket, slice, slice_value
),
-- metric id, its index in the sums, and whether it exists for the user-level slices only
metrics AS (
    SELECT * FROM (VALUES /*metric_values:begin*/('ctr', 0, FALSE), ('save_rate', 1, FALSE), ('saves_per_click', 2, FALSE), ('recall', 3, TRUE), ('session_depth', 4, TRUE)/*metric_values:end*/) AS m (metric, k, per_user)
)
SELECT
    s.experiment_id, m.metric, s.bucket, s.slice, s.slice_value, s.n
    /*metric_pick:begin*/,
    CASE m.k WHEN 0 THEN s.num_0 WHEN 1 THEN s.num_1 WHEN 2 THEN s.num_2 WHEN 3 THEN s.num_3 WHEN 4 THEN s.num_4 END AS sum_num,
    CASE m.k WHEN 0 THEN s.den_0 WHEN 1 THEN s.den_1 WHEN 2 THEN s.den_2 WHEN 3 THEN s.den_3 WHEN 4 THEN s.den_4 END AS sum_den,
    CASE m.k WHEN 0 THEN s.num2_0 WHEN 1 THEN s.num2_1 WHEN 2 THEN s.num2_2 WHEN 3 THEN s.num2_3 WHEN 4 THEN s.num2_4 END AS sum_num2,
    CASE m.k WHEN 0 THEN s.den2_0 WHEN 1 THEN s.den2_1 WHEN 2 THEN s.den2_2 WHEN 3 THEN s.den2_3 WHEN 4 THEN s.den2_4 END AS sum_den2,
    CASE m.k WHEN 0 THEN s.numden_0 WHEN 1 THEN s.numden_1 WHEN 2 THEN s.numden_2 WHEN 3 THEN s.numden_3 WHEN 4 THEN s.numden_4 END AS sum_numden,
    CASE m.k WHEN 0 THEN s.pre_num_0 WHEN 1 THEN s.pre_num_1 WHEN 2 THEN s.pre_num_2 WHEN 3 THEN s.pre_num_3 WHEN 4 THEN s.pre_num_4 END AS sum_pre_num,
    CASE m.k WHEN 0 THEN s.pre_den_0 WHEN 1 THEN s.pre_den_1 WHEN 2 THEN s.pre_den_2 WHEN 3 THEN s.pre_den_3 WHEN 4 THEN s.pre_den_4 END AS sum_pre_den,
    CASE m.k WHEN 0 THEN s.pre_num2_0 WHEN 1 THEN s.pre_num2_1 WHEN 2 THEN s.pre_num2_2 WHEN 3 THEN s.pre_num2_3 WHEN 4 THEN s.pre_num2_4 END AS sum_pre_num2,
    CASE m.k WHEN 0 THEN s.pre_den2_0 WHEN 1 THEN s.pre_den2_1 WHEN 2 THEN s.pre_den2_2 WHEN 3 THEN s.pre_den2_3 WHEN 4 THEN s.pre_den2_4 END AS sum_pre_den2,
    CASE m.k WHEN 0 THEN s.pre_numden_0 WHEN 1 THEN s.pre_numden_1 WHEN 2 THEN s.pre_numden_2 WHEN 3 THEN s.pre_numden_3 WHEN 4 THEN s.pre_numden_4 END AS sum_pre_numden,
    CASE m.k WHEN 0 THEN s.num_pre_num_0 WHEN 1 THEN s.num_pre_num_1 WHEN 2 THEN s.num_pre_num_2 WHEN 3 THEN s.num_pre_num_3 WHEN 4 THEN s.num_pre_num_4 END AS sum_num_pre_num,
    CASE m.k WHEN 0 THEN s.num_pre_den_0 WHEN 1 THEN s.num_pre_den_1 WHEN 2 THEN s.num_pre_den_2 WHEN 3 THEN s.num_pre_den_3 WHEN 4 THEN s.num_pre_den_4 END AS sum_num_pre_den,
    CASE m.k WHEN 0 THEN s.den_pre_num_0 WHEN 1 THEN s.den_pre_num_1 WHEN 2 THEN s.den_pre_num_2 WHEN 3 THEN s.den_pre_num_3 WHEN 4 THEN s.den_pre_num_4 END AS sum_den_pre_num,
    CASE m.k WHEN 0 THEN s.den_pre_den_0 WHEN 1 THEN s.den_pre_den_1 WHEN 2 THEN s.den_pre_den_2 WHEN 3 THEN s.den_pre_den_3 WHEN 4 THEN s.den_pre_den_4 END AS sum_den_pre_den/*metric_pick:end*/
FROM sums AS s CROSS JOIN metrics AS m
WHERE NOT (m.per_user AND s.slice IN ('surface', 'genre', 'provider')) /*row_filter*/
