using Kawa.Dataflow.Parquet.Format;

namespace Kawa.Dataflow.Tests.Parquet.Format;

public class ThriftAndRleTests
{
    [Test]
    public void FileMetaData_WriteThenRead_RoundTripsFieldsIncludingLongListsAndFarFieldIds()
    {
        var meta = new FileMetaData
        {
            Version = 2,
            NumRows = -1234567890123,
            CreatedBy = "créé par moi",
            KeyValueMetadata = [new KeyValue { Key = "k", Value = "v" }, new KeyValue { Key = "only-key" }],
            TypeDefinedColumnOrders = 20,
        };
        meta.Schema.Add(new SchemaElement { Name = "schema", NumChildren = 20 });
        for (int i = 0; i < 20; i++)
        {
            meta.Schema.Add(new SchemaElement
            {
                Name = "c" + i, Type = PhysicalType.FixedLenByteArray, TypeLength = 16, RepetitionType = Repetition.Optional,
                LogicalType = new LogicalType { Kind = LogicalType.Decimal, Precision = 38, Scale = i },
                ConvertedType = ConvertedType.Decimal, Scale = i, Precision = 38,
            });
        }

        var buffer = new ByteBuffer();
        meta.Write(new ThriftCompactWriter(buffer));
        var back = FileMetaData.Read(buffer.WrittenSpan);

        Assert.That(back.Version, Is.EqualTo(2));
        Assert.That(back.NumRows, Is.EqualTo(-1234567890123));
        Assert.That(back.CreatedBy, Is.EqualTo("créé par moi"));
        Assert.That(back.KeyValueMetadata!.Select(k => (k.Key, k.Value)), Is.EqualTo(new[] { ("k", (string?)"v"), ("only-key", null) }));
        Assert.That(back.TypeDefinedColumnOrders, Is.EqualTo(20));
        Assert.That(back.Schema, Has.Count.EqualTo(21));
        Assert.That(back.Schema[20].LogicalType!.Scale, Is.EqualTo(19));
        Assert.That(back.Schema[20].TypeLength, Is.EqualTo(16));
    }

    [Test]
    public void Reader_UnknownFieldsOfEveryType_AreSkipped()
    {
        var buffer = new ByteBuffer();
        var w = new ThriftCompactWriter(buffer);
        w.StructBegin();
        w.I32(1, 1);
        w.Bool(50, true);              // unknown, far id (long-form header)
        w.Binary(51, [1, 2, 3]);
        w.ListField(52, ThriftType.I64, 20);
        for (int i = 0; i < 20; i++) w.I32Value(i);
        w.StructField(53);
        w.I64(1, 5);
        w.StructEnd();
        w.I64(3, 77);                  // back to a known field
        w.StructEnd();

        var back = FileMetaData.Read(buffer.WrittenSpan);

        Assert.That(back.Version, Is.EqualTo(1));
        Assert.That(back.NumRows, Is.EqualTo(77));
    }

    [Test]
    public void Reader_TruncatedFooter_ThrowsInvalidData()
    {
        var meta = new FileMetaData { NumRows = 5, CreatedBy = "x" };
        var buffer = new ByteBuffer();
        meta.Write(new ThriftCompactWriter(buffer));

        Assert.Throws<InvalidDataException>(() => FileMetaData.Read(buffer.WrittenSpan[..^3]));
    }

    [TestCase(1)]
    [TestCase(3)]
    [TestCase(8)]
    [TestCase(17)]
    [TestCase(32)]
    public void RleBitPackedHybrid_RandomRunsAndLiterals_RoundTrip(int bitWidth)
    {
        var random = new Random(bitWidth);
        long max = bitWidth == 32 ? int.MaxValue : (1L << bitWidth) - 1;
        var values = new List<int>();
        while (values.Count < 5000)
        {
            int v = (int)random.NextInt64(0, max + 1);
            int repeat = random.Next(3) == 0 ? random.Next(1, 40) : 1;
            values.AddRange(Enumerable.Repeat(v, repeat));
        }

        var buffer = new ByteBuffer();
        RleBitPackedHybrid.Encode(values.ToArray(), bitWidth, buffer);
        var decoded = new int[values.Count];
        RleBitPackedHybrid.Decode(buffer.WrittenSpan, bitWidth, decoded);

        Assert.That(decoded, Is.EqualTo(values));
    }

    [Test]
    public void RleBitPackedHybrid_LongRun_EncodesAsOneRun()
    {
        var buffer = new ByteBuffer();
        RleBitPackedHybrid.Encode(Enumerable.Repeat(1, 100_000).ToArray(), 1, buffer);

        Assert.That(buffer.Length, Is.LessThanOrEqualTo(4), "a single RLE run: varint header + one value byte");
    }
}
