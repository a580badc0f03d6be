-- question: at the largest context each scheme was evaluated at, how much worse is its bpb than at
-- its training context (bpb_ratio = bpb(n) / bpb(train_ctx); 1.0 = no degradation), in the latest run?
SELECT b.scheme,
       b.variant,
       b.context,
       round(b.ctx_ratio, 2) AS ctx_ratio,
       round(avg(b.bpb_ratio), 4) AS bpb_ratio,
       round(avg(b.bpb), 4) AS bpb,
       group_concat(DISTINCT b.status) AS status
FROM v_latest_bpb b
WHERE b.context = (SELECT max(x.context) FROM v_latest_bpb x
                   WHERE x.scheme = b.scheme AND x.variant = b.variant)
GROUP BY b.scheme, b.variant
ORDER BY b.bpb_ratio IS NULL, avg(b.bpb_ratio);
