"""Pricing: the pricer (genai-prices + prices file), bounds, restatements and price-data updates."""
