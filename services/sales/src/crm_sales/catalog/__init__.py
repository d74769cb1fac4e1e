"""The catalog: products, price lists and VAT rates, and the money arithmetic quotes use."""
