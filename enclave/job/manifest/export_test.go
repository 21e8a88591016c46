package manifest

import "insitu/connectors/catalog"

func catalogDefault() *catalog.Catalog { return catalog.Default() }
