"""Resource planning: the Spark and DDZ settings a product's run needs, from its data."""
