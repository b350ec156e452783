"""The chaos suite (``make chaos``, ``python -m chaos``): the failure scenarios of issue 13 run
against a stack of their own, with a table of what went wrong (``chaos.report``).

``stack`` starts and breaks the stack (PostgreSQL and RabbitMQ behind the TCP fault proxies of
``tests.support.faultproxy``), ``workload`` uploads as a user, ``observers`` watch as clients,
``notifications`` duplicates and fakes bucket notifications, ``scenarios`` are the faults,
``runner`` runs one.
"""
