"""`python -m exporter report`: a day (or range) of events and rejects as one offline HTML page."""
