"""Starts the moto server with DynamoDB's isolation.

DynamoDB applies a TransactWriteItems (and every single-item write) atomically: a condition is
checked and the write applied with no other write in between. moto serves requests on many threads
and checks a transaction's conditions and applies its items one after another with no lock, so two
concurrent transactions can both pass a condition that only one of them should (and a cancelled one
restores a copy of its tables taken before it began, undoing writes made meanwhile). Serializing
DynamoDB requests gives the emulator the isolation the real service has; the other services (SQS
long polls, S3) keep their threads.

moto also undoes a cancelled transaction by keeping a deep copy of every table the transaction
names, taken before it begins: each transaction costs a copy of whole tables, which grows with what
the tables hold (a fleet's inventory table after a few hundred orders made each reservation take a
quarter of a second). Under the lock nothing else writes meanwhile, so keeping a copy of the items
the transaction names, and putting them back when it is cancelled, undoes the same.

Usage: python moto-server.py [moto_server arguments]
"""

import copy
import sys
import threading

from moto.dynamodb import models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_DYNAMODB = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialized_call_action(self):
    with _DYNAMODB:
        return _call_action(self)


DynamoHandler.call_action = _serialized_call_action


class _TablesUncopied:
    """The `copy` module as moto's DynamoDB backend sees it: a table's deep copy is the table."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


models.copy = _TablesUncopied()
_transact_write_items = DynamoDBBackend.transact_write_items


def _key_of(table, op):
    """The key an operation of a transaction names in `table`, or None when it names none."""
    attrs = op.get("Item") if "Item" in op else op.get("Key")
    if not attrs or table.hash_key_attr not in attrs:
        return None
    if table.range_key_attr is None:
        return DynamoType(attrs[table.hash_key_attr]), None
    if table.range_key_attr not in attrs:
        return None
    return DynamoType(attrs[table.hash_key_attr]), DynamoType(attrs[table.range_key_attr])


def _transact_with_item_undo(self, transact_items):
    saved = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        key = _key_of(table, op) if table is not None else None
        if key is not None:
            saved.append((table, key, copy.deepcopy(table.get_item(*key))))
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for table, (hash_value, range_value), item in reversed(saved):
            if range_value is None:
                if item is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = item
            elif item is None:
                table.items[hash_value].pop(range_value, None)
            else:
                table.items[hash_value][range_value] = item
        raise


DynamoDBBackend.transact_write_items = _transact_with_item_undo

if __name__ == "__main__":
    main(sys.argv[1:])
