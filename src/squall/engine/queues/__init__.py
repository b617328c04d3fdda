"""User queues: the queue book (``book``) and the triggers that drain queues into functions
(``consumer``)."""
