import squall

# App-wide packages go in requirements.txt beside this file: it is read before the
# import, so top-level imports may use them. These two functions add their own.
app = squall.App("pricing")


@app.function(requirements=["acme-pricing==2.1"])
def quote(event, ctx):
    import acme_pricing  # imported here: the module itself imports without it

    return {"engine": acme_pricing.__version__}


@app.function(requirements=["acme-pricing==1.0"])
def legacy_quote(event, ctx):
    import acme_pricing

    return {"engine": acme_pricing.__version__}
