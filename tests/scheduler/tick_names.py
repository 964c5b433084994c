"""Names the tick kind's processes and the test share, in a module that registers nothing.

Importing :mod:`tests.scheduler.tick_job` adds the ``tick`` kind to the process's job table, so only
the worker and beat processes it starts may import it; the test process reads these names from here
and keeps the table as shipped for every other test of the session.
"""

#: Where each run is counted (a Redis list of JSON objects, one per run).
RUNS_KEY = "test:tick:runs"
