-- question: how many bits per byte does each scheme need at each evaluation context, in the latest run?
-- (mean over seeds; a context a scheme cannot serve shows an empty bpb and status "unsupported")
SELECT scheme,
       variant,
       context,
       round(ctx_ratio, 2) AS ctx_ratio,
       round(avg(bpb), 4) AS bpb,
       count(bpb) AS seeds,
       group_concat(DISTINCT status) AS status
FROM v_latest_bpb
GROUP BY scheme, variant, context
ORDER BY scheme, variant, context;
