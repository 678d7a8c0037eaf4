"""The Flickr group scraper: photos' groups, group sizes and owners' stats -> Delta -> ingest's CSVs.

``client`` (rate-limited, retrying REST calls), ``flickr`` (one photo / group / owner, parsed),
``inputs`` (the photo ids to scrape), ``store`` (resumable Delta batches), ``run`` (the loop),
``export`` (the CSV files ``smp_spark.ingest`` reads).
"""
