import squall

app = squall.App("trips")

def book_flight(trip):  # steps are plain functions; a real one calls the airline
    return f"FL-{trip['id']}"


def cancel_flight(trip):
    print("cancelled flight", f"FL-{trip['id']}")


def book_hotel(trip):
    if trip.get("city") == "Atlantis":
        raise ValueError("no hotel in Atlantis")
    return f"HT-{trip['id']}"


@app.workflow(step_retries=1, step_backoff_s=0.1)
def book_trip(wf, trip):
    flight = wf.step(book_flight, trip)      # checkpointed: never runs twice for a run
    wf.compensate(cancel_flight, trip)       # undone if a later step fails for good
    hotel = wf.step(book_hotel, trip)
    wf.sleep("1s")                           # a durable timer: survives restarts
    return {"flight": flight, "hotel": hotel}
