with options as (
    select * from {{ ref('options') }}
),

final as (
    select
        option_code,
        question_code,
        option_number,
        label_en,
        label_zh
    from options
)

select * from final
