"""Web shop: norm-aware shopping agents in a text shop, after WebShop and CASA."""
