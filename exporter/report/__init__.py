"""``python -m exporter report``: a day (or range) of events and rejects as one offline HTML
page: counted in bounded memory (``aggregate``, ``counting``, ``delivery``), laid out
(``sections``, ``page``), drawn (``charts``, matplotlib loaded only here). Not in the
Lambda package; imports ``exporter.options``, never ``exporter.cli``.
"""
