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
}
