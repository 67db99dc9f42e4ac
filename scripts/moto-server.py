"""Starts the moto server with DynamoDB's isolation.

DynamoDB applies a TransactWriteItems (and every single-item write) atomically: a condition is
checked and the write applied with no other write in between. moto serves requests on many threads
and checks a transaction's conditions and applies its items one after another with no lock, so two
concurrent transactions can both pass a condition that only one of them should (and a cancelled one
restores a copy of its tables taken before it began, undoing writes made meanwhile). Serializing
DynamoDB requests gives the emulator the isolation the real service has; the other services (SQS
long polls, S3) keep their threads.

Usage: python moto-server.py [moto_server arguments]
"""

import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_DYNAMODB = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialized_call_action(self):
    with _DYNAMODB:
        return _call_action(self)


DynamoHandler.call_action = _serialized_call_action

if __name__ == "__main__":
    main(sys.argv[1:])
