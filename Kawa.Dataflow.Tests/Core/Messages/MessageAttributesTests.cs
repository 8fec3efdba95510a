using System.Diagnostics.CodeAnalysis;

namespace Kawa.Dataflow.Tests.Core.Messages;

public class MessageAttributesTests
{
    private static readonly AttributeKey<bool> Flag = new("flag");

    [Test]
    public void Build_ThenBuilderUsedAgain_EarlierSetNeverChanges()
    {
        // A builder sized exactly hands its array to the first Build without copying; it must copy before changing it.
        var builder = MessageAttributes.CreateBuilder(2)
            .Set(MessageAttributeKeys.Subject, "a")
            .Set(MessageAttributeKeys.StreamSequence, 1UL);
        var first = builder.Build();

        builder.Set(MessageAttributeKeys.Subject, "b").Set(MessageAttributeKeys.DeliveryCount, 2L);
        var second = builder.Build();

        Assert.That(first.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("a"));
        Assert.That(first.TryGet(MessageAttributeKeys.DeliveryCount, out _), Is.False);
        Assert.That(first, Has.Count.EqualTo(2));
        Assert.That(second.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("b"));
        Assert.That(second.GetOrDefault(MessageAttributeKeys.DeliveryCount, 0L), Is.EqualTo(2));
        Assert.That(second, Has.Count.EqualTo(3));
    }

    [Test]
    public void Set_SameKeyTwiceAndBeyondCapacity_LastValueWinsInFirstSetOrder()
    {
        var attributes = MessageAttributes.CreateBuilder(1)
            .Set(MessageAttributeKeys.Subject, "a")
            .Set(MessageAttributeKeys.Stream, "s")
            .Set(MessageAttributeKeys.Subject, "c")
            .Set(Flag, true)
            .Build();

        Assert.That(attributes.Select(a => a.Key), Is.EqualTo(new[] { "subject", "stream", "flag" }));
        Assert.That(attributes.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("c"));
        Assert.That(attributes.GetOrDefault(Flag, false), Is.True);
    }

    [Test]
    public void With_ExistingAndNewKey_CopiesAndLeavesTheOriginal()
    {
        var original = MessageAttributes.CreateBuilder().Set(Flag, false).Build();

        var replaced = original.With(Flag, true);
        var added = original.With(MessageAttributeKeys.Subject, "x");

        Assert.That(original.GetOrDefault(Flag, true), Is.False);
        Assert.That(replaced.GetOrDefault(Flag, false), Is.True);
        Assert.That(added.Select(a => a.Key), Is.EqualTo(new[] { "flag", "subject" }));
    }

    [Test]
    public void FromProvider_StoredTypeRules_SameAnswersAsStoredAttributes()
    {
        var provided = MessageAttributes.FromProvider(new TwoValueProvider());
        var stored = MessageAttributes.CreateBuilder(3)
            .Set(MessageAttributeKeys.StreamSequence, 7UL)
            .Set(MessageAttributeKeys.Subject, "orders")
            .Set(MessageAttributeKeys.Stream, null!)
            .Build();

        foreach (var attributes in new[] { provided, stored })
        {
            Assert.That(attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(7UL));
            Assert.That(attributes.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("orders"));
            Assert.That(attributes.TryGet(new AttributeKey<long>("stream.sequence"), out _), Is.False, "another value type");
            Assert.That(attributes.TryGet(new AttributeKey<object>("stream.sequence"), out var any) ? any : null, Is.EqualTo(7UL), "a base type");
            Assert.That(attributes.TryGet(MessageAttributeKeys.Stream, out _), Is.False, "a null value is not found");
            Assert.That(attributes.TryGet(MessageAttributeKeys.DeliveryCount, out _), Is.False, "absent");
            Assert.That(attributes.TryGetValue("subject", out var subject) ? subject : null, Is.EqualTo("orders"));
            Assert.That(attributes.Select(e => e.Key), Is.EqualTo(new[] { "stream.sequence", "subject", "stream" }));
            Assert.That(attributes, Has.Count.EqualTo(3));
        }
    }

    [Test]
    public void With_OnProvidedAttributes_CopiesEveryValueAndAddsTheNewOne()
    {
        var provided = MessageAttributes.FromProvider(new TwoValueProvider());

        var derived = provided.With(MessageAttributeKeys.Subject, "other").With(Flag, true);

        Assert.That(derived.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("other"));
        Assert.That(derived.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(7UL));
        Assert.That(derived.GetOrDefault(Flag), Is.True);
        Assert.That(provided.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("orders"), "the original is unchanged");
        Assert.That(provided.TryGet(Flag, out _), Is.False);
    }

    /// <summary>Answers by key without the default search; a null stream to check the null rule.</summary>
    private sealed class TwoValueProvider : MessageAttributeProvider
    {
        public override int Count => 3;

        public override KeyValuePair<string, object?> GetAt(int index) => index switch
        {
            0 => new("stream.sequence", 7UL),
            1 => new("subject", "orders"),
            2 => new("stream", null),
            _ => throw new ArgumentOutOfRangeException(nameof(index)),
        };

        public override bool TryGet<TValue>(AttributeKey<TValue> key, [MaybeNullWhen(false)] out TValue value) => key.Name switch
        {
            "stream.sequence" => Match(7UL, out value),
            "subject" => Match("orders", out value),
            "stream" => Match<string?, TValue>(null, out value),
            _ => Match<string?, TValue>(null, out value),
        };
    }
}
