using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Templates;

namespace Kawa.Dataflow.Tests.Cli.Templates;

public class FieldTemplateTests
{
    [Test]
    public void Render_PartitionTemplate_FormatsTimestampInvariantly()
    {
        var template = FieldTemplate.Parse("dt={ts:yyyy-MM-dd}/hour={ts:HH}");
        var record = new EventRecord().Set("ts", new DateTimeOffset(2015, 5, 17, 10, 5, 3, TimeSpan.Zero));

        Assert.That(template.Render(record), Is.EqualTo("dt=2015-05-17/hour=10"));
        Assert.That(template.Placeholders, Is.EqualTo(new[] { ("ts", (string?)"yyyy-MM-dd"), ("ts", (string?)"HH") }));
    }

    [Test]
    public void Render_MissingNullAndPropertyFields_UseNullTextAndResolver()
    {
        var template = FieldTemplate.Parse("logs.{status}.{user}.{missing}.{$subject}");
        var record = new EventRecord().Set("status", 503L).Set("user", (string?)null);

        var text = template.Render(record, name => name == "$subject" ? FieldValue.From("in.x") : FieldValue.Null, v => v.Replace('.', '_'));

        Assert.That(text, Is.EqualTo("logs.503.__null__.__null__.in_x"));
    }

    [TestCase("dt={ts", "unclosed '{' at position 4")]
    [TestCase("dt={ts{x}}", "unclosed '{' at position 4")]
    [TestCase("dt=}", "unexpected '}' at position 4")]
    [TestCase("a/{}/b", "empty placeholder at position 3")]
    public void Parse_Malformed_ThrowsWithPosition(string text, string message)
    {
        var ex = Assert.Throws<FormatException>(() => FieldTemplate.Parse(text));

        Assert.That(ex!.Message, Is.EqualTo(message));
    }

    [Test]
    public void CheckFormat_InvalidDateFormat_GivesReason()
    {
        Assert.That(FieldTemplate.CheckFormat("yyyy-MM-dd"), Is.Null);
        Assert.That(FieldTemplate.CheckFormat("%"), Is.Not.Null);
    }

    [Test]
    public void MessageProperties_ReadFromAttributesKeyAndRaw()
    {
        var received = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var attributes = MessageAttributes.CreateBuilder()
            .Set(MessageAttributeKeys.ReceivedAt, received)
            .Set(MessageAttributeKeys.StreamSequence, 42UL)
            .Set(MessageAttributeKeys.Subject, "access.raw")
            .Build();
        var message = new Message<EventRecord>(new EventRecord("line"u8.ToArray()), Key: "k", Attributes: attributes);

        Assert.That(MessageProperties.Get(message, MessageProperties.ReceivedAt).AsTimestamp(), Is.EqualTo(received));
        Assert.That(MessageProperties.Get(message, MessageProperties.Sequence).AsLong(), Is.EqualTo(42));
        Assert.That(MessageProperties.Get(message, MessageProperties.Subject).AsString(), Is.EqualTo("access.raw"));
        Assert.That(MessageProperties.Get(message, MessageProperties.Key).AsString(), Is.EqualTo("k"));
        Assert.That(MessageProperties.Get(message, MessageProperties.Raw).AsString(), Is.EqualTo("line"));
        Assert.That(MessageProperties.Get(message, MessageProperties.Stream).IsNull, Is.True);
    }
}
