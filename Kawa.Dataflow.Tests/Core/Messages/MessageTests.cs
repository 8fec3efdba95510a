namespace Kawa.Dataflow.Tests.Core.Messages;

public class MessageTests
{
    private static readonly MessageAttributes Some = MessageAttributes.CreateBuilder(1).Set(MessageAttributeKeys.Subject, "s").Build();

    [Test]
    public void Attributes_DefaultMessage_ReadsEmptyNotNull()
    {
        var message = default(Message<int>);

        Assert.That(message.Attributes, Is.SameAs(MessageAttributes.Empty));
        var array = new Message<string>[1];
        Assert.That(array[0].Attributes, Is.SameAs(MessageAttributes.Empty), "an array element is default too");
    }

    [Test]
    public void Attributes_ConstructedWithoutOrWithNull_ReadsEmpty()
    {
        Assert.That(new Message<int>(1).Attributes, Is.SameAs(MessageAttributes.Empty));
        Assert.That(new Message<int>(1, "k", "t", null).Attributes, Is.SameAs(MessageAttributes.Empty));
        Assert.That(new Message<int>(1) { Attributes = null! }.Attributes, Is.SameAs(MessageAttributes.Empty));
    }

    [Test]
    public void Attributes_SetToNullInWithExpression_ReadsEmpty()
    {
        var message = new Message<int>(1, "k", "t", Some);

        var cleared = message with { Attributes = null! };

        Assert.That(cleared.Attributes, Is.SameAs(MessageAttributes.Empty));
        Assert.That(cleared.Key, Is.EqualTo("k"));
        Assert.That(message.Attributes, Is.SameAs(Some));
    }

    [Test]
    public void With_OnDefaultMessage_DerivedMessageHasEmptyAttributes()
    {
        var derived = default(Message<int>).With("x");

        Assert.That(derived.Attributes, Is.SameAs(MessageAttributes.Empty));
        Assert.That(derived.Attributes.With(MessageAttributeKeys.Subject, "s").GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("s"));
    }

    [Test]
    public void Deconstruct_DefaultMessage_AttributesNotNull()
    {
        var (_, _, _, attributes) = default(Message<int>);

        Assert.That(attributes, Is.SameAs(MessageAttributes.Empty));
    }

    [Test]
    public void Equals_NoAttributesEmptyAttributesAndDefault_AllEqual()
    {
        Assert.That(new Message<int>(0), Is.EqualTo(default(Message<int>)));
        Assert.That(new Message<int>(0, Attributes: MessageAttributes.Empty), Is.EqualTo(default(Message<int>)));
        Assert.That(new Message<int>(0) with { Attributes = MessageAttributes.Empty }, Is.EqualTo(new Message<int>(0)));
        Assert.That(new Message<int>(0, Attributes: Some), Is.Not.EqualTo(new Message<int>(0)));
    }
}
