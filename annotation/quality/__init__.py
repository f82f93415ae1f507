"""Agreement reports, aggregated gold labels and adjudication over the annotations in the database.

``columns`` holds the loaded annotations, ``report`` and ``aggregate`` are pure computations on them (they call
``annotation.agreement``), ``selectors`` reads the database and ``services`` writes; see README.md.
"""
