using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Tests.Cli.Events;

public class EventRecordTests
{
    [Test]
    public void Set_NewNames_KeepsInsertionOrderAndTypes()
    {
        var ts = new DateTimeOffset(2015, 5, 17, 10, 5, 3, TimeSpan.FromHours(2));
        var record = new EventRecord(Encoding.UTF8.GetBytes("raw"), capacity: 1)
            .Set("s", "text").Set("l", 42L).Set("d", 1.5).Set("b", true).Set("t", ts).Set("n", (string?)null);

        Assert.That(record.Names, Is.EqualTo(new[] { "s", "l", "d", "b", "t", "n" }));
        Assert.That(record["s"].AsString(), Is.EqualTo("text"));
        Assert.That(record["l"].AsLong(), Is.EqualTo(42));
        Assert.That(record["d"].AsDouble(), Is.EqualTo(1.5));
        Assert.That(record["b"].AsBool(), Is.True);
        Assert.That(record["t"].AsTimestamp(), Is.EqualTo(ts));
        Assert.That(record["t"].AsTimestamp().Offset, Is.EqualTo(TimeSpan.FromHours(2)));
        Assert.That(record.TryGet("n", out var n) && n.IsNull, Is.True);
        Assert.That(record.TryGet("missing", out _), Is.False);
        Assert.That(record.RawText, Is.EqualTo("raw"));
    }

    [Test]
    public void EnsureCapacity_ThenSetMoreThanTheInitialCapacity_KeepsEveryFieldInOrder()
    {
        var record = new EventRecord(capacity: 2).Set("a", 1L);
        record.EnsureCapacity(12);
        for (var i = 0; i < 11; i++)
        {
            record.Set("f" + i, i);
        }

        record.EnsureCapacity(3);

        Assert.That(record.Names, Is.EqualTo(new[] { "a" }.Concat(Enumerable.Range(0, 11).Select(i => "f" + i))));
        Assert.That(record["f10"].AsLong(), Is.EqualTo(10));
    }

    [Test]
    public void Set_ExistingName_ReplacesInPlace()
    {
        var record = new EventRecord().Set("a", 1L).Set("b", 2L).Set("a", "x");

        Assert.That(record.Names, Is.EqualTo(new[] { "a", "b" }));
        Assert.That(record["a"].AsString(), Is.EqualTo("x"));
    }

    [Test]
    public void Remove_MiddleField_KeepsOthersInOrder()
    {
        var record = new EventRecord().Set("a", 1L).Set("b", 2L).Set("c", 3L);

        Assert.That(record.Remove("b"), Is.True);
        Assert.That(record.Remove("b"), Is.False);
        Assert.That(record.Names, Is.EqualTo(new[] { "a", "c" }));
        Assert.That(record["c"].AsLong(), Is.EqualTo(3));
    }

    [Test]
    public void Rename_OntoExistingName_ReplacesItAndKeepsPosition()
    {
        var record = new EventRecord().Set("a", 1L).Set("b", 2L).Set("c", 3L);

        Assert.That(record.Rename("c", "a"), Is.True);
        Assert.That(record.Names, Is.EqualTo(new[] { "b", "a" }));
        Assert.That(record["a"].AsLong(), Is.EqualTo(3));
        Assert.That(record.Rename("zzz", "y"), Is.False);
    }

    [Test]
    public void Clone_ChangingCopy_LeavesOriginalAlone()
    {
        var record = new EventRecord(new byte[] { 1, 2 }).Set("a", 1L);
        var copy = record.Clone().Set("a", 2L).Set("b", true);

        Assert.That(record["a"].AsLong(), Is.EqualTo(1));
        Assert.That(record.Count, Is.EqualTo(1));
        Assert.That(copy.Count, Is.EqualTo(2));
        Assert.That(copy.Raw.ToArray(), Is.EqualTo(new byte[] { 1, 2 }));
    }

    [Test]
    public void FromJson_EachKind_MapsToFieldKind()
    {
        using var doc = JsonDocument.Parse("""{"s":"x","i":7,"f":2.5,"t":true,"n":null,"o":{"k":[1,2]},"a":[1]}""");
        var root = doc.RootElement;
        FieldValue Of(string name) => FieldValue.FromJson(root.GetProperty(name));

        Assert.That(Of("s").Kind, Is.EqualTo(FieldKind.String));
        Assert.That(Of("i").AsLong(), Is.EqualTo(7));
        Assert.That(Of("f").AsDouble(), Is.EqualTo(2.5));
        Assert.That(Of("t").AsBool(), Is.True);
        Assert.That(Of("n").IsNull, Is.True);
        Assert.That(Of("o").Kind, Is.EqualTo(FieldKind.Json));
        Assert.That(Of("o").ToString(), Is.EqualTo("""{"k":[1,2]}"""));
        Assert.That(Of("a").Kind, Is.EqualTo(FieldKind.Json));
    }

    [Test]
    public void AsLong_OnString_ThrowsNamingBothKinds()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => FieldValue.From("x").AsLong());
        Assert.That(ex!.Message, Does.Contain("String").And.Contain("Long"));
    }

    [Test]
    public void ToString_Format_AppliesToTimestampsInvariantly()
    {
        var value = FieldValue.From(new DateTimeOffset(2015, 5, 17, 10, 5, 3, TimeSpan.Zero));

        Assert.That(value.ToString("yyyy-MM-dd/HH"), Is.EqualTo("2015-05-17/10"));
        Assert.That(FieldValue.From(1.25).ToString(), Is.EqualTo("1.25"));
        Assert.That(FieldValue.Null.ToString(), Is.Empty);
    }

    [Test]
    public void Equals_SameKindAndValue_AreEqual()
    {
        var one = FieldValue.From(1L);
        Assert.That(one, Is.EqualTo(FieldValue.From(2L - 1)));
        Assert.That(FieldValue.From(1L), Is.Not.EqualTo(FieldValue.From(1.0)));
        Assert.That(FieldValue.From("a") == FieldValue.From("a"), Is.True);
    }
}
