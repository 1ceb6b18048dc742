"""A crop's lineage, one click away: what is stored about a crop (``records``), its whole
story assembled from it (``story``), lists of crops (``listing``), the index of dataset
builds that hold each crop (``builds``) and the addresses that link crop pages and the
Dagster UI both ways (``links``).

Below ``labelling`` and ``datasets`` (both may use it), above ``footage``; no Dagster, no
web framework: the crop pages (``labelling.crop_pages``) and the Dagster metadata
(``defs``) are thin layers over it.
"""
