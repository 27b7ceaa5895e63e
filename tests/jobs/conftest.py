from tests.jobs.support import jobs_shop, make_jobs_shop, payplug_sim  # noqa: F401  (fixtures)
