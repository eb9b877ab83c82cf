from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
LINE_FIELD_NUMBER: _ClassVar[int]
line: _descriptor.FieldDescriptor
TEXT_FIELD_NUMBER: _ClassVar[int]
text: _descriptor.FieldDescriptor
SLUG_FIELD_NUMBER: _ClassVar[int]
slug: _descriptor.FieldDescriptor
GENRE_PATH_FIELD_NUMBER: _ClassVar[int]
genre_path: _descriptor.FieldDescriptor
