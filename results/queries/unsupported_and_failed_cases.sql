-- question: which cases did not succeed (unsupported, failed, timeout, oom, diverged), and why?
-- (every run, newest first)
SELECT run_id,
       suite,
       scheme,
       variant,
       task,
       context,
       seed,
       status,
       error
FROM v_cases
WHERE status <> 'ok'
ORDER BY run_id DESC, status, scheme, variant, task, context, seed;
